package eventstore

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// ErrChainBroken is wrapped by every VerifyChain failure: the events are not the untouched,
// complete history of one stream.
var ErrChainBroken = errors.New("eventstore: hash chain broken")

// canonicalTag opens the canonical bytes so that a future encoding (v2) can never produce the
// same bytes as this one for different fields.
const canonicalTag = "paymentledger/eventstore/event/v1"

// zeroHash is the prev_hash of every stream's first event.
var zeroHash = make([]byte, sha256.Size)

// CanonicalBytes is the encoding of e that its hash covers: a version tag, then the stream ID,
// version, event ID, type, schema version, recorded_at (RFC 3339 with nanoseconds, UTC), data
// and metadata (MetadataJSON, the stored bytes), each preceded by its length as an 8-byte
// big-endian integer. Length prefixes make the encoding unambiguous: no two different events
// share canonical bytes, whatever their fields contain. Position, PrevHash and Hash are not
// covered: the position is assigned by the database, and the hash chain links PrevHash itself.
func CanonicalBytes(e RecordedEvent) []byte {
	id := e.ID.String()
	at := e.RecordedAt.UTC().Format(time.RFC3339Nano)
	fields := [][]byte{
		[]byte(canonicalTag),
		[]byte(e.StreamID),
		strconv.AppendInt(nil, e.Version, 10),
		[]byte(id),
		[]byte(e.Type),
		strconv.AppendInt(nil, int64(e.SchemaVersion), 10),
		[]byte(at),
		e.Data,
		e.MetadataJSON,
	}
	n := 0
	for _, f := range fields {
		n += 8 + len(f)
	}
	b := make([]byte, 0, n)
	for _, f := range fields {
		b = binary.BigEndian.AppendUint64(b, uint64(len(f)))
		b = append(b, f...)
	}
	return b
}

// HashAlg says which function made an event's hash. It is stored with every event
// (events.hash_alg), so that a verifier knows which function to recompute.
type HashAlg uint8

const (
	// HashSHA256 is sha256(prev || CanonicalBytes): anyone can recompute it, so it stops an
	// editor who does not know the formula or cannot run code, not one who can.
	HashSHA256 HashAlg = iota
	// HashHMACSHA256 is HMAC-SHA256(chain key, prev || CanonicalBytes): recomputing it needs the
	// chain key, which is kept outside the database (AUDIT_CHAIN_KEY).
	HashHMACSHA256
)

// String is the name stored in events.hash_alg.
func (a HashAlg) String() string {
	switch a {
	case HashSHA256:
		return "sha256"
	case HashHMACSHA256:
		return "hmac-sha256"
	}
	return "hash-alg-" + strconv.Itoa(int(a))
}

func parseHashAlg(s string) (HashAlg, error) {
	switch s {
	case "sha256":
		return HashSHA256, nil
	case "hmac-sha256":
		return HashHMACSHA256, nil
	}
	return 0, fmt.Errorf("unknown hash_alg %q", s)
}

// MinChainKeyLen is the shortest chain key NewChainKey accepts: 256 bits, the strength of the
// hash itself.
const MinChainKeyLen = 32

// ChainKey is the secret that keys the hash chain (HashHMACSHA256). The zero ChainKey is "no
// key": a store built with it hashes with plain SHA-256, as before keys existed.
type ChainKey struct {
	secret []byte
	id     string
}

// NewChainKey returns the chain key for secret, which must be at least MinChainKeyLen bytes.
// The store keeps its own copy.
func NewChainKey(secret []byte) (ChainKey, error) {
	if len(secret) < MinChainKeyLen {
		return ChainKey{}, fmt.Errorf("eventstore: a chain key needs at least %d bytes, not %d", MinChainKeyLen, len(secret))
	}
	k := ChainKey{secret: bytes.Clone(secret)}
	k.id = hex.EncodeToString(k.mac([]byte(chainKeyIDTag))[:8])
	return k, nil
}

// IsZero reports whether k is the zero ChainKey (no key).
func (k ChainKey) IsZero() bool { return len(k.secret) == 0 }

// ID names the key without revealing it: the first 8 bytes, in hex, of an HMAC of a fixed
// label under it. It tells which key keyed a database's history.
func (k ChainKey) ID() string { return k.id }

func (k ChainKey) mac(parts ...[]byte) []byte {
	m := hmac.New(sha256.New, k.secret)
	for _, p := range parts {
		m.Write(p)
	}
	return m.Sum(nil)
}

const (
	chainKeyIDTag         = "paymentledger/eventstore/chain-key-id/v1"
	chainKeyActivationTag = "paymentledger/eventstore/chain-key-activation/v1"
)

// activationMAC authenticates a chain key's activation record: which key, from which
// transaction on. Without the key nobody can write a record that verifies, so the position
// from which events must be keyed cannot be moved later by someone with database access only.
func (k ChainKey) activationMAC(transaction uint64) []byte {
	return k.mac([]byte(chainKeyActivationTag), []byte(k.id), binary.BigEndian.AppendUint64(nil, transaction))
}

// chainHash is the hash of e after prev with alg: sha256(prev || CanonicalBytes(e)), or
// HMAC-SHA256(key, prev || CanonicalBytes(e)). It returns nil for a keyed hash without a key.
func chainHash(alg HashAlg, key ChainKey, prev []byte, e RecordedEvent) []byte {
	switch alg {
	case HashSHA256:
		h := sha256.New()
		h.Write(prev)
		h.Write(CanonicalBytes(e))
		return h.Sum(nil)
	case HashHMACSHA256:
		if key.IsZero() {
			return nil
		}
		return key.mac(prev, CanonicalBytes(e))
	}
	return nil
}

// ErrChainKeyMissing is wrapped by the errors about keyed events met without the chain key:
// a verifier without the key cannot check them, and a store without it must not append after
// them (its plain hashes would read as a downgrade).
var ErrChainKeyMissing = errors.New("eventstore: keyed hash chain, but no chain key (AUDIT_CHAIN_KEY) is configured")

// ChainProblem says what is wrong with one event of a chain, or with a stream's head.
type ChainProblem uint8

const (
	// ProblemSequence: an event out of version sequence, or of another stream.
	ProblemSequence ChainProblem = iota + 1
	// ProblemLink: prev_hash is not the previous event's hash.
	ProblemLink
	// ProblemMetadata: the metadata shown differs from the stored (hashed) bytes.
	ProblemMetadata
	// ProblemHash: the hash does not match the event: it was edited after it was hashed.
	ProblemHash
	// ProblemDowngrade: a plain hash where a keyed one is required (after a keyed event of the
	// stream, or after the chain key's activation).
	ProblemDowngrade
	// ProblemKeyedEarly: a keyed hash before the chain key's activation: the activation record
	// was replaced, or the event was keyed with another key.
	ProblemKeyedEarly
	// ProblemKeyMissing: a keyed hash, and the verifier has no key to check it.
	ProblemKeyMissing
	// ProblemTailMissing: the head is ahead of the events: events are missing from the end.
	ProblemTailMissing
	// ProblemHeadBehind: events beyond the head: appended without moving the head.
	ProblemHeadBehind
	// ProblemHeadHash: the head's hash is not the last event's.
	ProblemHeadHash
)

// ChainError is one problem of a stream's chain. It matches ErrChainBroken with errors.Is, and
// ErrChainKeyMissing too when the problem is ProblemKeyMissing.
type ChainError struct {
	Stream  string
	Version int64 // the event's version; 0 for a problem of the stream as a whole
	Problem ChainProblem
	Detail  string
}

// Error names the stream and, when there is one, the version.
func (e *ChainError) Error() string {
	if e.Version == 0 {
		return fmt.Sprintf("%v: stream %q: %s", ErrChainBroken, e.Stream, e.Detail)
	}
	return fmt.Sprintf("%v: stream %q version %d: %s", ErrChainBroken, e.Stream, e.Version, e.Detail)
}

// Is makes errors.Is(err, ErrChainBroken) true, and errors.Is(err, ErrChainKeyMissing) for a
// missing key.
func (e *ChainError) Is(target error) bool {
	return target == ErrChainBroken || target == ErrChainKeyMissing && e.Problem == ProblemKeyMissing
}

// Verifier checks hash chains. The zero Verifier has no chain key: it checks plain hashes and
// refuses keyed ones, which it cannot check (so a forged "keyed" event is never waved
// through). A store's Verifier carries the store's chain key and, once the key is activated,
// the position from which every event must be keyed.
//
// Downgrade protection: someone without the key could otherwise replace a keyed event by a
// plain one and recompute the plain hashes after it. Two rules stop that: in a stream, no plain
// event may follow a keyed one; and with the key, no plain event may sit after the key's
// activation position, which the store records under a MAC of the key (so it cannot be moved
// without the key). A keyed event before the activation is refused too: it means the record was
// replaced. A Verifier is a value, safe for concurrent use.
type Verifier struct {
	key        ChainKey
	activated  bool
	activation Position // events after it must be keyed (when activated)
}

// Keyed reports whether v has a chain key.
func (v Verifier) Keyed() bool { return !v.key.IsZero() }

// Activation returns the position after which every event must be keyed, and whether the key
// has been activated.
func (v Verifier) Activation() (Position, bool) { return v.activation, v.activated }

// Check returns every problem of one stream's events (in version order) and, when head is not
// nil, of its recorded head. Each event is checked against its predecessor as stored, so an
// edited event is reported alone, not with every event after it; an event reports its first
// problem only.
func (v Verifier) Check(stream string, events []RecordedEvent, head *Head) []*ChainError {
	var out []*ChainError
	report := func(version int64, p ChainProblem, format string, args ...any) {
		out = append(out, &ChainError{Stream: stream, Version: version, Problem: p, Detail: fmt.Sprintf(format, args...)})
	}
	prev, want := zeroHash, int64(1)
	keyed, keyMissing := false, false
	for _, e := range events {
		if problem := v.checkEvent(stream, e, prev, want, keyed); problem != nil {
			if problem.Problem != ProblemKeyMissing || !keyMissing {
				report(e.Version, problem.Problem, "%s", problem.Detail)
			}
			keyMissing = keyMissing || problem.Problem == ProblemKeyMissing
		}
		keyed = keyed || e.HashAlg == HashHMACSHA256
		prev, want = e.Hash, e.Version+1
	}
	if head == nil {
		return out
	}
	var last RecordedEvent
	if len(events) > 0 {
		last = events[len(events)-1]
	}
	switch {
	case last.Version < head.Version:
		report(0, ProblemTailMissing, "its head is at version %d, its events end at version %d (events missing from the end)", head.Version, last.Version)
	case last.Version > head.Version:
		report(0, ProblemHeadBehind, "its head is at version %d, its events end at version %d (events added without moving the head, or the head moved back)", head.Version, last.Version)
	case len(events) > 0 && !bytes.Equal(last.Hash, head.Hash):
		report(last.Version, ProblemHeadHash, "the head's hash differs from the last event's")
	}
	return out
}

// checkEvent checks one event after prev (the stored hash of the event before it), where want
// is the version it should have and keyed says whether an earlier event of the stream is keyed.
func (v Verifier) checkEvent(stream string, e RecordedEvent, prev []byte, want int64, keyed bool) *ChainError {
	bad := func(p ChainProblem, format string, args ...any) *ChainError {
		return &ChainError{Problem: p, Detail: fmt.Sprintf(format, args...)}
	}
	if e.StreamID != stream {
		return bad(ProblemSequence, "an event of stream %q among its events", e.StreamID)
	}
	if e.Version != want {
		return bad(ProblemSequence, "version %d where version %d should be", e.Version, want)
	}
	if !bytes.Equal(e.PrevHash, prev) {
		return bad(ProblemLink, "prev_hash does not link to the previous event")
	}
	var m Metadata
	if err := json.Unmarshal(e.MetadataJSON, &m); err != nil {
		return bad(ProblemMetadata, "stored metadata: %v", err)
	}
	if m != e.Metadata {
		return bad(ProblemMetadata, "metadata differs from the stored bytes")
	}
	afterActivation := v.activated && v.activation.Less(e.Position)
	switch e.HashAlg {
	case HashSHA256:
		if keyed {
			return bad(ProblemDowngrade, "a plain sha256 hash after a keyed event of the stream (a downgrade)")
		}
		if v.Keyed() && afterActivation {
			return bad(ProblemDowngrade, "a plain sha256 hash at %s, after the chain key's activation at %s (a downgrade)", e.Position, v.activation)
		}
	case HashHMACSHA256:
		if !v.Keyed() {
			return bad(ProblemKeyMissing, "%v", ErrChainKeyMissing)
		}
		if v.activated && e.Position != Start && !afterActivation {
			return bad(ProblemKeyedEarly, "a keyed hash at %s, before the chain key's activation at %s (the activation record was replaced, or another key keyed it)", e.Position, v.activation)
		}
	default:
		return bad(ProblemHash, "unknown hash algorithm %s", e.HashAlg)
	}
	if !bytes.Equal(chainHash(e.HashAlg, v.key, prev, e), e.Hash) {
		return bad(ProblemHash, "hash does not match the event")
	}
	return nil
}

// VerifyChain is Check without a head, returning the first problem (a *ChainError) or nil.
func (v Verifier) VerifyChain(events []RecordedEvent) error {
	if len(events) == 0 {
		return nil
	}
	if problems := v.Check(events[0].StreamID, events, nil); len(problems) > 0 {
		return problems[0]
	}
	return nil
}

// VerifyStream is Check with the stream's recorded head, returning the first problem (a
// *ChainError) or nil.
func (v Verifier) VerifyStream(stream string, events []RecordedEvent, head Head) error {
	if problems := v.Check(stream, events, &head); len(problems) > 0 {
		return problems[0]
	}
	return nil
}

// VerifyChain checks that events are one stream's events in version order from 1, each linked
// to the previous one's hash (32 zero bytes for the first) and each hash equal to
// sha256(PrevHash || CanonicalBytes). It also checks that Metadata is what MetadataJSON says, so
// a reader cannot be shown metadata the hash does not cover. An empty slice passes. Errors are
// *ChainError (wrapping ErrChainBroken) and name the first bad event. It has no chain key, so
// keyed events fail with ErrChainKeyMissing: check them with the store's Verifier.
//
// A chain proves its events and their order, not that nothing follows: a stream with its last
// events cut off still verifies. Compare the last hash with the stream's head
// (event_streams.last_hash) to catch that.
func VerifyChain(events []RecordedEvent) error { return Verifier{}.VerifyChain(events) }

// Head is a stream's recorded head: the version and hash the store holds for the stream apart
// from its events (event_streams). A reader compares the last event with it, so an event deleted
// from the end of a stream, which VerifyChain alone cannot see, is caught too.
type Head struct {
	Version int64
	Hash    []byte
}
