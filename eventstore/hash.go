package eventstore

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
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

// chainHash is sha256(prev || CanonicalBytes(e)).
func chainHash(prev []byte, e RecordedEvent) []byte {
	h := sha256.New()
	h.Write(prev)
	h.Write(CanonicalBytes(e))
	return h.Sum(nil)
}

// VerifyChain checks that events are one stream's events in version order from 1, each linked
// to the previous one's hash (32 zero bytes for the first) and each hash equal to
// sha256(PrevHash || CanonicalBytes). It also checks that Metadata is what MetadataJSON says, so
// a reader cannot be shown metadata the hash does not cover. An empty slice passes. Errors wrap
// ErrChainBroken and name the first bad event.
//
// A chain proves its events and their order, not that nothing follows: a stream with its last
// events cut off still verifies. Compare the last hash with the stream's head
// (event_streams.last_hash) to catch that.
func VerifyChain(events []RecordedEvent) error {
	prev := zeroHash
	for i, e := range events {
		if e.StreamID != events[0].StreamID {
			return fmt.Errorf("%w: event %d belongs to stream %q, not %q", ErrChainBroken, i, e.StreamID, events[0].StreamID)
		}
		if want := int64(i + 1); e.Version != want {
			return fmt.Errorf("%w: stream %q: event %d has version %d, want %d", ErrChainBroken, e.StreamID, i, e.Version, want)
		}
		if !bytes.Equal(e.PrevHash, prev) {
			return fmt.Errorf("%w: stream %q version %d: prev_hash does not link to the previous event", ErrChainBroken, e.StreamID, e.Version)
		}
		var m Metadata
		if err := json.Unmarshal(e.MetadataJSON, &m); err != nil {
			return fmt.Errorf("%w: stream %q version %d: stored metadata: %v", ErrChainBroken, e.StreamID, e.Version, err)
		}
		if m != e.Metadata {
			return fmt.Errorf("%w: stream %q version %d: metadata differs from the stored bytes", ErrChainBroken, e.StreamID, e.Version)
		}
		if !bytes.Equal(chainHash(prev, e), e.Hash) {
			return fmt.Errorf("%w: stream %q version %d: hash does not match the event", ErrChainBroken, e.StreamID, e.Version)
		}
		prev = e.Hash
	}
	return nil
}

// Head is a stream's recorded head: the version and hash the store holds for the stream apart
// from its events (event_streams). A reader compares the last event with it, so an event deleted
// from the end of a stream, which VerifyChain alone cannot see, is caught too.
type Head struct {
	Version int64
	Hash    []byte
}

// VerifyStream checks a whole stream against its recorded head: the chain (VerifyChain) and
// the head equal to the last event's version and hash. Errors wrap ErrChainBroken and name the
// stream and, where there is one, the version.
func VerifyStream(stream string, events []RecordedEvent, head Head) error {
	if err := VerifyChain(events); err != nil {
		return err
	}
	var last RecordedEvent
	if len(events) > 0 {
		last = events[len(events)-1]
	}
	if last.Version != head.Version {
		return fmt.Errorf("%w: stream %q: its head is at version %d, its events end at version %d (events missing from the end, or added without the head)",
			ErrChainBroken, stream, head.Version, last.Version)
	}
	if len(events) > 0 && !bytes.Equal(last.Hash, head.Hash) {
		return fmt.Errorf("%w: stream %q version %d: the head's hash differs from the last event's", ErrChainBroken, stream, last.Version)
	}
	return nil
}
