package eventstore

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// This file holds the parts of Append that do not depend on the storage: argument checks, the
// expected-version rule, the safe-retry rule and the building of hashed records. Both stores use
// them, so they cannot drift apart.

// appendRequest is a checked Append call.
type appendRequest struct {
	stream   string
	expected ExpectedVersion
	events   []EventData
	metadata [][]byte // events[i].Metadata marshalled once: these bytes are stored and hashed
	ids      []uuid.UUID
}

// newAppendRequest checks an Append call before any storage is touched.
func newAppendRequest(stream string, expected ExpectedVersion, events []EventData) (appendRequest, error) {
	bad := func(format string, args ...any) (appendRequest, error) {
		return appendRequest{}, fmt.Errorf("eventstore: append to %q: %w: %s", stream, ErrInvalidArgument, fmt.Sprintf(format, args...))
	}
	// PostgreSQL text cannot hold NUL or invalid UTF-8; refusing them here keeps both stores alike.
	if stream == "" || !validText(stream) {
		return bad("stream ID must be non-empty UTF-8 text")
	}
	if expected < 0 && expected != Any && expected != NoStream && expected != StreamExists {
		return bad("expected version %d is neither >= 0 nor Any, NoStream or StreamExists", int64(expected))
	}
	if len(events) == 0 {
		return bad("no events")
	}
	r := appendRequest{
		stream:   stream,
		expected: expected,
		events:   events,
		metadata: make([][]byte, len(events)),
		ids:      make([]uuid.UUID, len(events)),
	}
	seen := make(map[uuid.UUID]bool, len(events))
	for i, e := range events {
		switch {
		case e.ID == uuid.Nil:
			return bad("event %d has no ID", i)
		case seen[e.ID]:
			return bad("event ID %s appears twice", e.ID)
		case e.Type == "" || !validText(e.Type):
			return bad("event %s: type must be non-empty UTF-8 text", e.ID)
		case e.SchemaVersion < 1:
			return bad("event %s: schema version %d < 1", e.ID, e.SchemaVersion)
		case !utf8.Valid(e.Data) || !json.Valid(e.Data):
			return bad("event %s: data is not valid UTF-8 JSON", e.ID)
		}
		seen[e.ID] = true
		m, err := json.Marshal(e.Metadata)
		if err != nil {
			return bad("event %s: metadata: %v", e.ID, err)
		}
		r.metadata[i] = m
		r.ids[i] = e.ID
	}
	return r, nil
}

// appendError gives a failed append its context. A *WrongExpectedVersionError already names the
// stream and both versions, and callers match it often: it is returned as it is.
func appendError(stream string, err error) error {
	var wev *WrongExpectedVersionError
	if err == nil || errors.As(err, &wev) {
		return err
	}
	return fmt.Errorf("eventstore: append to %q: %w", stream, err)
}

func validText(s string) bool { return utf8.ValidString(s) && !strings.ContainsRune(s, 0) }

// checkExpected applies the optimistic lock to a stream at version actual (0 = no events).
func (r appendRequest) checkExpected(actual int64) error {
	ok := false
	switch r.expected {
	case Any:
		ok = true
	case NoStream:
		ok = actual == 0
	case StreamExists:
		ok = actual > 0
	default:
		ok = actual == int64(r.expected)
	}
	if ok {
		return nil
	}
	return &WrongExpectedVersionError{Stream: r.stream, Expected: r.expected, Actual: actual}
}

// checkChainKey applies the downgrade rule to an append by a store with key (the zero key:
// none) to a stream whose head event has headAlg, in a history that historyKeyed says a chain
// key was activated for. A store without the key must not append there: its plain hashes would
// follow keyed ones, which every verifier refuses as a downgrade, and the stream would be
// unusable. Refusing the append keeps the stream intact and names the missing setting.
func (r appendRequest) checkChainKey(key ChainKey, headAlg HashAlg, historyKeyed bool) error {
	if !key.IsZero() {
		return nil
	}
	if headAlg == HashHMACSHA256 {
		return fmt.Errorf("%w: stream %q has keyed events", ErrChainKeyMissing, r.stream)
	}
	if historyKeyed {
		return fmt.Errorf("%w: a chain key was activated for this history", ErrChainKeyMissing)
	}
	return nil
}

// storedAt says where an event ID is already stored.
type storedAt struct {
	stream  string
	version int64
}

// retry decides an append some of whose IDs are already stored (found, keyed by ID; it must be
// non-empty). It succeeds, with the version the first append returned, only if every ID is in
// this stream at the versions this append would have produced: consecutive, in order, and
// starting where the expected version puts them (any start for Any; after at least one event
// for StreamExists). Anything else would store or report something other than what the caller
// asked for, so it is ErrDuplicateEventID.
func (r appendRequest) retry(found map[uuid.UUID]storedAt) (AppendResult, error) {
	dup := func(format string, args ...any) (AppendResult, error) {
		return AppendResult{}, fmt.Errorf("%w: %s", ErrDuplicateEventID, fmt.Sprintf(format, args...))
	}
	first := found[r.ids[0]] // when missing, the loop reports it at i == 0
	for i, id := range r.ids {
		at, ok := found[id]
		switch {
		case !ok:
			return dup("event %s is new but event %s of the same append is already stored", id, firstFound(r.ids, found))
		case at.stream != r.stream:
			return dup("event %s is stored in stream %q", id, at.stream)
		case at.version != first.version+int64(i):
			return dup("event %s is stored at version %d, not after the batch's first event (version %d)", id, at.version, first.version)
		}
	}
	want := true
	switch r.expected {
	case Any:
	case NoStream:
		want = first.version == 1
	case StreamExists:
		want = first.version >= 2
	default:
		want = first.version == int64(r.expected)+1
	}
	if !want {
		return dup("events are stored at versions %d..%d, not where expected version %s puts them",
			first.version, first.version+int64(len(r.ids))-1, r.expected)
	}
	return AppendResult{NextExpectedVersion: first.version + int64(len(r.ids)) - 1}, nil
}

func firstFound(ids []uuid.UUID, found map[uuid.UUID]storedAt) uuid.UUID {
	for _, id := range ids {
		if _, ok := found[id]; ok {
			return id
		}
	}
	return uuid.Nil
}

// records builds the events as they will be stored on a stream at version current whose last
// hash is prevHash, chaining each hash to the one before, keyed with key unless it is the zero
// key. recorded_at is truncated to the microsecond because PostgreSQL keeps no more, and the
// hash must be recomputable from what is read back.
func (r appendRequest) records(current int64, prevHash []byte, now time.Time, key ChainKey) []RecordedEvent {
	at := now.UTC().Truncate(time.Microsecond)
	alg := HashSHA256
	if !key.IsZero() {
		alg = HashHMACSHA256
	}
	out := make([]RecordedEvent, len(r.events))
	for i, e := range r.events {
		rec := RecordedEvent{
			StreamID:      r.stream,
			Version:       current + int64(i) + 1,
			ID:            e.ID,
			Type:          e.Type,
			SchemaVersion: e.SchemaVersion,
			Data:          e.Data,
			Metadata:      e.Metadata,
			MetadataJSON:  r.metadata[i],
			RecordedAt:    at,
			PrevHash:      prevHash,
			HashAlg:       alg,
		}
		rec.Hash = chainHash(alg, key, prevHash, rec)
		prevHash = rec.Hash
		out[i] = rec
	}
	return out
}
