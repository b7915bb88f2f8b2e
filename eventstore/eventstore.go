// Package eventstore owns the event store contract (streams, expected versions, the global log,
// catch-up subscriptions) and its PostgreSQL implementation.
//
// The semantics follow EventStoreDB/KurrentDB: a stream is an ordered list of events numbered
// from 1; Append checks an expected version (the optimistic lock); the global log ("$all")
// orders every committed event so that a subscriber that reads it from a position sees every
// event exactly once, in an order consistent with each stream's versions. The contract is kept
// narrow so that another implementation (an EventStoreDB adapter, the in-memory store in this
// package) can pass the same conformance suite (eventstoretest).
package eventstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// ExpectedVersion is the optimistic-concurrency condition of an Append.
// Values >= 0 mean "the stream's current version is exactly this" (0 = the stream is empty or
// does not exist); the negative constants below have special meanings.
type ExpectedVersion int64

const (
	// Any appends whatever the stream's version.
	Any ExpectedVersion = -1
	// NoStream requires that the stream does not exist yet.
	NoStream ExpectedVersion = -2
	// StreamExists requires that the stream has at least one event.
	StreamExists ExpectedVersion = -3
)

// String names the special values and prints exact versions as numbers.
func (e ExpectedVersion) String() string {
	switch e {
	case Any:
		return "any"
	case NoStream:
		return "no stream"
	case StreamExists:
		return "stream exists"
	}
	return strconv.FormatInt(int64(e), 10)
}

// Exact is the expected version "the stream is at version v".
func Exact(v int64) ExpectedVersion { return ExpectedVersion(v) }

// ErrWrongExpectedVersion is matched with errors.Is by every *WrongExpectedVersionError.
var ErrWrongExpectedVersion = errors.New("eventstore: wrong expected version")

// ErrStreamNotFound is returned by ReadStream for a stream with no events.
var ErrStreamNotFound = errors.New("eventstore: stream not found")

// ErrDuplicateEventID is returned when an event ID is already stored, but not as a safe retry of
// the same append (a different stream, or different positions in the stream).
var ErrDuplicateEventID = errors.New("eventstore: event id already used")

// ErrInvalidArgument is wrapped by errors for calls that can never succeed as made (no events,
// a body that is not JSON, a missing event ID or type, a non-positive limit); the store is not
// touched.
var ErrInvalidArgument = errors.New("eventstore: invalid argument")

// WrongExpectedVersionError says what the append expected and what the stream had.
type WrongExpectedVersionError struct {
	Stream   string
	Expected ExpectedVersion
	Actual   int64 // the stream's current version; 0 when it does not exist
}

// Error describes the mismatch.
func (e *WrongExpectedVersionError) Error() string {
	return fmt.Sprintf("eventstore: stream %q: expected version %s, actual %d", e.Stream, e.Expected, e.Actual)
}

// Is makes errors.Is(err, ErrWrongExpectedVersion) true.
func (e *WrongExpectedVersionError) Is(target error) bool { return target == ErrWrongExpectedVersion }

// Metadata travels with every event. MerchantID is on every event so that the integration
// stream can be routed per merchant.
type Metadata struct {
	MerchantID     string    `json:"merchantId"`
	CorrelationID  uuid.UUID `json:"correlationId"`
	CausationID    uuid.UUID `json:"causationId"`
	Actor          string    `json:"actor"` // merchant, system, recovery, webhook, reconciliation
	IdempotencyKey string    `json:"idempotencyKey,omitempty"`
	RequestHash    string    `json:"requestHash,omitempty"`
}

// EventData is an event to append. Data is its JSON body; the store keeps its exact bytes.
type EventData struct {
	ID            uuid.UUID
	Type          string
	SchemaVersion int
	Data          []byte
	Metadata      Metadata
}

// RecordedEvent is an event as stored.
type RecordedEvent struct {
	StreamID      string
	Version       int64 // 1-based position in the stream
	Position      Position
	ID            uuid.UUID
	Type          string
	SchemaVersion int
	Data          []byte
	Metadata      Metadata
	// MetadataJSON is Metadata exactly as stored and hashed. The hash covers these bytes, not
	// a re-encoding of Metadata, so the chain stays verifiable when Metadata gains fields.
	MetadataJSON []byte
	RecordedAt   time.Time // set by the store, microsecond precision, UTC
	PrevHash     []byte
	Hash         []byte
	// HashAlg is the function that made Hash: plain SHA-256, or HMAC-SHA256 when the store
	// that appended the event had a chain key (WithChainKey).
	HashAlg HashAlg
}

// Position is a place in the global log. The log is ordered by (Transaction, Sequence):
// Transaction is the writing transaction's id and Sequence the row's insert sequence. The zero
// Position is the start of the log. Positions are opaque to callers beyond ordering and their
// string form.
type Position struct {
	Transaction uint64
	Sequence    int64
}

// Start is the position before the first event.
var Start = Position{}

// Less reports whether p comes before q in the global log.
func (p Position) Less(q Position) bool {
	if p.Transaction != q.Transaction {
		return p.Transaction < q.Transaction
	}
	return p.Sequence < q.Sequence
}

// String formats p as "transaction/sequence"; ParsePosition reads it back.
func (p Position) String() string {
	return strconv.FormatUint(p.Transaction, 10) + "/" + strconv.FormatInt(p.Sequence, 10)
}

// ParsePosition parses the form written by Position.String.
func ParsePosition(s string) (Position, error) {
	tx, seq, ok := strings.Cut(s, "/")
	if !ok {
		return Position{}, fmt.Errorf("eventstore: position %q: want transaction/sequence", s)
	}
	t, err := strconv.ParseUint(tx, 10, 64)
	if err != nil {
		return Position{}, fmt.Errorf("eventstore: position %q: %w", s, err)
	}
	q, err := strconv.ParseInt(seq, 10, 64)
	if err != nil {
		return Position{}, fmt.Errorf("eventstore: position %q: %w", s, err)
	}
	return Position{Transaction: t, Sequence: q}, nil
}

// AppendResult tells where an append left the stream.
type AppendResult struct {
	// NextExpectedVersion is the stream's version after the append.
	NextExpectedVersion int64
}

// Option configures a store (NewPostgres, NewMemory).
type Option func(*options)

type options struct {
	key ChainKey
}

func applyOptions(opts []Option) options {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// WithChainKey keys the store's hash chain: events it appends are hashed with
// HMAC-SHA256(key, prev || canonical bytes) instead of plain SHA-256, and its Verifier (used by
// ReadVerified) checks keyed hashes with the key and refuses plain ones after the key's
// activation (see Verifier). Events appended before the key was set keep their plain hashes and
// still verify. The zero ChainKey leaves the store unkeyed, so a setting that may be empty can
// be passed as it is.
func WithChainKey(key ChainKey) Option {
	return func(o *options) { o.key = key }
}

// Store is the event store contract. Implementations are safe for concurrent use.
//
// Append writes events to the end of stream atomically (all or none) if expected matches the
// stream's current version; otherwise it returns a *WrongExpectedVersionError. Appending events
// whose IDs are all already stored in that stream, at the versions the same expected version
// would give them, is a no-op that succeeds (a safe retry after a lost answer); event IDs stored
// anywhere else give ErrDuplicateEventID. Events with no ID or type, a schema version below 1 or
// a Data that is not JSON give ErrInvalidArgument. Context cancellation aborts an append that has
// not committed.
//
// ReadStream returns the stream's events with version >= from, in version order, or
// ErrStreamNotFound when the stream has no events (reading past the end of a stream that has
// events gives none and no error).
//
// ReadAll returns up to limit (> 0) events after position from, in global-log order. It returns
// only events whose place in the order is final: no event can later appear before the last one
// it returns.
//
// Subscribe reads the global log after from (catch-up), then waits for new events (live), and
// calls handle with each batch of at most batchSize events, in global-log order, one call at a
// time. It returns when ctx is done (ctx.Err()) or when handle returns an error (that error).
// A handler that persists the position of the last event of each batch can resume from it
// without loss or repetition. A lost database connection is retried with back-off; a read error
// that retrying cannot fix ends the subscription and is returned.
type Store interface {
	Append(ctx context.Context, stream string, expected ExpectedVersion, events []EventData) (AppendResult, error)
	ReadStream(ctx context.Context, stream string, from int64) ([]RecordedEvent, error)
	ReadAll(ctx context.Context, from Position, limit int) ([]RecordedEvent, error)
	Subscribe(ctx context.Context, from Position, batchSize int, handle func(context.Context, []RecordedEvent) error) error
}
