// Package eventstoretest is the conformance suite of the eventstore.Store contract. Every
// implementation runs the same Run, so the contract is defined by behaviour, not by one
// implementation: the in-memory store proves the suite does not depend on PostgreSQL.
//
// The suite never sleeps to let something happen: it waits for a condition with a deadline and
// then asserts. Reads of the global log are retried until they see what was appended, because an
// implementation may legitimately hold back committed events for a while (PostgreSQL does while
// any older transaction on the server is open).
package eventstoretest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/paymentledger/ledger/eventstore"
)

// waitTimeout bounds every wait for the store to deliver something. It is a failure deadline,
// not a performance target: generous, so that a slow CI machine does not fail the suite.
const waitTimeout = 30 * time.Second

// Run runs the conformance suite. newStore must return an empty store for each call; it is
// called once per subtest and may register cleanups on the subtest's t.
func Run(t *testing.T, newStore func(t *testing.T) eventstore.Store) {
	t.Run("ExpectedVersion", func(t *testing.T) { testExpectedVersion(t, newStore(t)) })
	t.Run("InvalidArguments", func(t *testing.T) { testInvalidArguments(t, newStore(t)) })
	t.Run("FailedAppendWritesNothing", func(t *testing.T) { testFailedAppendWritesNothing(t, newStore(t)) })
	t.Run("IdempotentRetry", func(t *testing.T) { testIdempotentRetry(t, newStore(t)) })
	t.Run("ConcurrentRetries", func(t *testing.T) { testConcurrentRetries(t, newStore(t)) })
	t.Run("DuplicateEventID", func(t *testing.T) { testDuplicateEventID(t, newStore(t)) })
	t.Run("ReadStream", func(t *testing.T) { testReadStream(t, newStore(t)) })
	t.Run("HashChain", func(t *testing.T) { testHashChain(t, newStore(t)) })
	t.Run("ReadAllPaging", func(t *testing.T) { testReadAllPaging(t, newStore(t)) })
	t.Run("SubscribeCatchUpThenLive", func(t *testing.T) { testSubscribeCatchUpThenLive(t, newStore(t)) })
	t.Run("SubscribeFromPosition", func(t *testing.T) { testSubscribeFromPosition(t, newStore(t)) })
	t.Run("SubscribeHandlerError", func(t *testing.T) { testSubscribeHandlerError(t, newStore(t)) })
	t.Run("SubscribeContextCanceled", func(t *testing.T) { testSubscribeContextCanceled(t, newStore(t)) })
	t.Run("AppendCanceledContext", func(t *testing.T) { testAppendCanceledContext(t, newStore(t)) })
	t.Run("ConcurrentAppendsAndSubscriber", func(t *testing.T) { testConcurrent(t, newStore(t)) })
}

var seq atomic.Int64

// NewEvent returns a valid event of type typ with a unique ID and a small JSON body.
func NewEvent(typ string) eventstore.EventData {
	n := seq.Add(1)
	return eventstore.EventData{
		ID:            uuid.New(),
		Type:          typ,
		SchemaVersion: 1,
		Data:          fmt.Appendf(nil, `{"n":%d}`, n),
		Metadata: eventstore.Metadata{
			MerchantID:    "merchant-1",
			CorrelationID: uuid.New(),
			CausationID:   uuid.New(),
			Actor:         "system",
		},
	}
}

// NewEvents returns n events from NewEvent.
func NewEvents(n int) []eventstore.EventData {
	out := make([]eventstore.EventData, n)
	for i := range out {
		out[i] = NewEvent("TestEvent")
	}
	return out
}

func mustAppend(t *testing.T, s eventstore.Store, stream string, expected eventstore.ExpectedVersion, events []eventstore.EventData) eventstore.AppendResult {
	t.Helper()
	res, err := s.Append(t.Context(), stream, expected, events)
	if err != nil {
		t.Fatalf("append %d events to %q (expected %s): %v", len(events), stream, expected, err)
	}
	return res
}

// streamLen returns the number of events in stream (0 when it does not exist).
func streamLen(t *testing.T, s eventstore.Store, stream string) int {
	t.Helper()
	events, err := s.ReadStream(t.Context(), stream, 1)
	if errors.Is(err, eventstore.ErrStreamNotFound) {
		return 0
	}
	if err != nil {
		t.Fatalf("read stream %q: %v", stream, err)
	}
	return len(events)
}

func ids(events []eventstore.EventData) []uuid.UUID {
	out := make([]uuid.UUID, len(events))
	for i, e := range events {
		out[i] = e.ID
	}
	return out
}

func recordedIDs(events []eventstore.RecordedEvent) []uuid.UUID {
	out := make([]uuid.UUID, len(events))
	for i, e := range events {
		out[i] = e.ID
	}
	return out
}

func equalIDs(a, b []uuid.UUID) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// readAllEventually pages through the global log from start with the given page size until it
// has want events, waiting (with a deadline) when a page comes back short. It fails the test on
// any error, deadline or extra event.
func readAllEventually(t *testing.T, s eventstore.Store, from eventstore.Position, limit, want int) []eventstore.RecordedEvent {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	var got []eventstore.RecordedEvent
	pos := from
	for len(got) < want {
		page, err := s.ReadAll(t.Context(), pos, limit)
		if err != nil {
			t.Fatalf("read all from %s: %v", pos, err)
		}
		if len(page) > limit {
			t.Fatalf("read all from %s, limit %d: got %d events", pos, limit, len(page))
		}
		if len(page) == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("read all: got %d events, want %d, after %s", len(got), want, waitTimeout)
			}
			time.Sleep(10 * time.Millisecond) // poll interval while waiting for a condition
			continue
		}
		got = append(got, page...)
		pos = page[len(page)-1].Position
	}
	if len(got) != want {
		t.Fatalf("read all: got %d events, want %d", len(got), want)
	}
	return got
}

// checkGlobalOrder checks that positions strictly increase, that no ID repeats and that every
// stream's versions run 1, 2, 3... with no gap.
func checkGlobalOrder(t *testing.T, events []eventstore.RecordedEvent) {
	t.Helper()
	seen := map[uuid.UUID]bool{}
	versions := map[string]int64{}
	prev := eventstore.Start
	for i, e := range events {
		if !prev.Less(e.Position) {
			t.Fatalf("event %d: position %s does not follow %s", i, e.Position, prev)
		}
		prev = e.Position
		if seen[e.ID] {
			t.Fatalf("event %d: ID %s seen twice", i, e.ID)
		}
		seen[e.ID] = true
		if want := versions[e.StreamID] + 1; e.Version != want {
			t.Fatalf("event %d: stream %q version %d, want %d", i, e.StreamID, e.Version, want)
		}
		versions[e.StreamID] = e.Version
	}
}

// wrongVersion asserts that err is a wrong-expected-version error with the given details.
func wrongVersion(t *testing.T, err error, stream string, expected eventstore.ExpectedVersion, actual int64) {
	t.Helper()
	if !errors.Is(err, eventstore.ErrWrongExpectedVersion) {
		t.Fatalf("got error %v, want ErrWrongExpectedVersion", err)
	}
	var wev *eventstore.WrongExpectedVersionError
	if !errors.As(err, &wev) {
		t.Fatalf("error %v is not a *WrongExpectedVersionError", err)
	}
	if wev.Stream != stream || wev.Expected != expected || wev.Actual != actual {
		t.Fatalf("got %+v, want stream %q expected %s actual %d", *wev, stream, expected, actual)
	}
}

func testExpectedVersion(t *testing.T, s eventstore.Store) {
	const ok = -1
	cases := []struct {
		name       string
		existing   int // events in the stream before the append
		expected   eventstore.ExpectedVersion
		wantActual int64 // ok, or the Actual of the expected error
	}{
		{"Any on new", 0, eventstore.Any, ok},
		{"Any on existing", 2, eventstore.Any, ok},
		{"NoStream on new", 0, eventstore.NoStream, ok},
		{"NoStream on existing", 2, eventstore.NoStream, 2},
		{"StreamExists on new", 0, eventstore.StreamExists, 0},
		{"StreamExists on existing", 2, eventstore.StreamExists, ok},
		{"exact right", 2, eventstore.Exact(2), ok},
		{"exact too low", 2, eventstore.Exact(1), 2},
		{"exact too high", 2, eventstore.Exact(3), 2},
		{"exact 0 on new", 0, eventstore.Exact(0), ok},
		{"exact 0 on existing", 2, eventstore.Exact(0), 2},
		{"exact 1 on new", 0, eventstore.Exact(1), 0},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			stream := fmt.Sprintf("expected-%d", i)
			if c.existing > 0 {
				mustAppend(t, s, stream, eventstore.NoStream, NewEvents(c.existing))
			}
			res, err := s.Append(t.Context(), stream, c.expected, NewEvents(2))
			if c.wantActual == ok {
				if err != nil {
					t.Fatalf("append: %v", err)
				}
				if want := int64(c.existing + 2); res.NextExpectedVersion != want {
					t.Fatalf("next expected version %d, want %d", res.NextExpectedVersion, want)
				}
				if n := streamLen(t, s, stream); n != c.existing+2 {
					t.Fatalf("stream has %d events, want %d", n, c.existing+2)
				}
				return
			}
			wrongVersion(t, err, stream, c.expected, c.wantActual)
			if n := streamLen(t, s, stream); n != c.existing {
				t.Fatalf("after a refused append the stream has %d events, want %d", n, c.existing)
			}
		})
	}
}

func testInvalidArguments(t *testing.T, s eventstore.Store) {
	valid := func() eventstore.EventData { return NewEvent("TestEvent") }
	with := func(f func(e *eventstore.EventData)) []eventstore.EventData {
		e := valid()
		f(&e)
		return []eventstore.EventData{valid(), e}
	}
	dup := valid()
	cases := []struct {
		name     string
		stream   string
		expected eventstore.ExpectedVersion
		events   []eventstore.EventData
	}{
		{"nil events", "s", eventstore.Any, nil},
		{"no events", "s", eventstore.Any, []eventstore.EventData{}},
		{"empty stream ID", "", eventstore.Any, NewEvents(1)},
		{"unknown negative expected version", "s", eventstore.ExpectedVersion(-7), NewEvents(1)},
		{"data not JSON", "s", eventstore.Any, with(func(e *eventstore.EventData) { e.Data = []byte(`{"a":`) })},
		{"empty data", "s", eventstore.Any, with(func(e *eventstore.EventData) { e.Data = nil })},
		{"data not UTF-8", "s", eventstore.Any, with(func(e *eventstore.EventData) { e.Data = []byte("\"\xff\"") })},
		{"no ID", "s", eventstore.Any, with(func(e *eventstore.EventData) { e.ID = uuid.Nil })},
		{"no type", "s", eventstore.Any, with(func(e *eventstore.EventData) { e.Type = "" })},
		{"schema version 0", "s", eventstore.Any, with(func(e *eventstore.EventData) { e.SchemaVersion = 0 })},
		{"same ID twice in the batch", "s", eventstore.Any, []eventstore.EventData{dup, dup}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := s.Append(t.Context(), c.stream, c.expected, c.events)
			if !errors.Is(err, eventstore.ErrInvalidArgument) {
				t.Fatalf("got %v, want ErrInvalidArgument", err)
			}
			if n := streamLen(t, s, c.stream); n != 0 {
				t.Fatalf("stream has %d events after an invalid append", n)
			}
		})
	}
	t.Run("ReadAll limit 0", func(t *testing.T) {
		if _, err := s.ReadAll(t.Context(), eventstore.Start, 0); !errors.Is(err, eventstore.ErrInvalidArgument) {
			t.Fatalf("got %v, want ErrInvalidArgument", err)
		}
	})
	t.Run("Subscribe batch size 0", func(t *testing.T) {
		err := s.Subscribe(t.Context(), eventstore.Start, 0, func(context.Context, []eventstore.RecordedEvent) error { return nil })
		if !errors.Is(err, eventstore.ErrInvalidArgument) {
			t.Fatalf("got %v, want ErrInvalidArgument", err)
		}
	})
	// Nothing above reached the log.
	if events, err := s.ReadAll(t.Context(), eventstore.Start, 10); err != nil || len(events) != 0 {
		t.Fatalf("read all after invalid appends: %d events, %v", len(events), err)
	}
}

func testFailedAppendWritesNothing(t *testing.T, s eventstore.Store) {
	ctx := t.Context()
	mustAppend(t, s, "atomic", eventstore.NoStream, NewEvents(2))

	// A wrong expected version refuses the whole batch.
	rejected := NewEvents(3)
	_, err := s.Append(ctx, "atomic", eventstore.Exact(1), rejected)
	wrongVersion(t, err, "atomic", eventstore.Exact(1), 2)

	// A batch whose last event reuses an ID stored elsewhere is refused as a whole.
	mustAppend(t, s, "other", eventstore.NoStream, []eventstore.EventData{NewEvent("TestEvent")})
	other, err := s.ReadStream(ctx, "other", 1)
	if err != nil {
		t.Fatal(err)
	}
	reused := other[0]
	partial := append(NewEvents(2), eventstore.EventData{ID: reused.ID, Type: "TestEvent", SchemaVersion: 1, Data: []byte(`{}`)})
	if _, err := s.Append(ctx, "atomic", eventstore.Exact(2), partial); !errors.Is(err, eventstore.ErrDuplicateEventID) {
		t.Fatalf("got %v, want ErrDuplicateEventID", err)
	}

	// A refused append to a new stream leaves no stream behind.
	if _, err := s.Append(ctx, "never", eventstore.StreamExists, NewEvents(2)); !errors.Is(err, eventstore.ErrWrongExpectedVersion) {
		t.Fatalf("got %v, want ErrWrongExpectedVersion", err)
	}
	if _, err := s.ReadStream(ctx, "never", 1); !errors.Is(err, eventstore.ErrStreamNotFound) {
		t.Fatalf("read refused new stream: got %v, want ErrStreamNotFound", err)
	}

	if n := streamLen(t, s, "atomic"); n != 2 {
		t.Fatalf("stream has %d events, want 2", n)
	}
	all := readAllEventually(t, s, eventstore.Start, 100, 3)
	if extra, err := s.ReadAll(ctx, all[len(all)-1].Position, 100); err != nil || len(extra) != 0 {
		t.Fatalf("global log has %d more events than the 3 appended (%v)", len(extra), err)
	}
	// None of the refused IDs was stored: they append cleanly now, at the next versions.
	if res := mustAppend(t, s, "atomic", eventstore.Exact(2), rejected); res.NextExpectedVersion != 5 {
		t.Fatalf("next expected version %d, want 5", res.NextExpectedVersion)
	}
	if res := mustAppend(t, s, "atomic", eventstore.Exact(5), partial[:2]); res.NextExpectedVersion != 7 {
		t.Fatalf("next expected version %d, want 7", res.NextExpectedVersion)
	}
	if res := mustAppend(t, s, "never", eventstore.NoStream, NewEvents(1)); res.NextExpectedVersion != 1 {
		t.Fatalf("next expected version %d, want 1", res.NextExpectedVersion)
	}
}

func testAppendCanceledContext(t *testing.T, s eventstore.Store) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := s.Append(ctx, "canceled", eventstore.NoStream, NewEvents(2)); !errors.Is(err, context.Canceled) {
		t.Fatalf("append with a canceled context: got %v, want context.Canceled", err)
	}
	if n := streamLen(t, s, "canceled"); n != 0 {
		t.Fatalf("stream has %d events after a canceled append", n)
	}
}

func testIdempotentRetry(t *testing.T, s eventstore.Store) {
	retry := func(t *testing.T, stream string, expected eventstore.ExpectedVersion, events []eventstore.EventData, want int64) {
		t.Helper()
		res, err := s.Append(t.Context(), stream, expected, events)
		if err != nil {
			t.Fatalf("retry with expected %s: %v", expected, err)
		}
		if res.NextExpectedVersion != want {
			t.Fatalf("retry with expected %s: next expected version %d, want %d", expected, res.NextExpectedVersion, want)
		}
	}
	first := NewEvents(2)
	mustAppend(t, s, "idem", eventstore.NoStream, first)
	retry(t, "idem", eventstore.NoStream, first, 2)

	second := NewEvents(1)
	mustAppend(t, s, "idem", eventstore.Any, second)
	retry(t, "idem", eventstore.Any, second, 3)

	third := NewEvents(2)
	mustAppend(t, s, "idem", eventstore.Exact(3), third)
	retry(t, "idem", eventstore.Exact(3), third, 5)

	fourth := NewEvents(1)
	mustAppend(t, s, "idem", eventstore.StreamExists, fourth)
	retry(t, "idem", eventstore.StreamExists, fourth, 6)

	// The stream moved on since; a late retry of an earlier append still succeeds unchanged.
	mustAppend(t, s, "idem", eventstore.Exact(6), NewEvents(1))
	retry(t, "idem", eventstore.Exact(3), third, 5)
	retry(t, "idem", eventstore.NoStream, first, 2)
	retry(t, "idem", eventstore.Any, third, 5)

	events, err := s.ReadStream(t.Context(), "idem", 1)
	if err != nil {
		t.Fatal(err)
	}
	var want []uuid.UUID
	for _, b := range [][]eventstore.EventData{first, second, third, fourth} {
		want = append(want, ids(b)...)
	}
	if got := recordedIDs(events); !equalIDs(got[:6], want) || len(got) != 7 {
		t.Fatalf("stream holds %v, want %v and one more", got, want)
	}
	readAllEventually(t, s, eventstore.Start, 100, 7)
}

func testConcurrentRetries(t *testing.T, s eventstore.Store) {
	// The same append sent by several callers at once (a client retrying while its first try is
	// still running) is stored once, and every caller is told it succeeded.
	events := NewEvents(2)
	const callers = 8
	errs := make(chan error, callers)
	var start sync.WaitGroup
	start.Add(1)
	for range callers {
		go func() {
			start.Wait()
			res, err := s.Append(t.Context(), "retried", eventstore.NoStream, events)
			if err == nil && res.NextExpectedVersion != 2 {
				err = fmt.Errorf("next expected version %d, want 2", res.NextExpectedVersion)
			}
			errs <- err
		}()
	}
	start.Done()
	for range callers {
		if err := <-errs; err != nil {
			t.Errorf("concurrent identical append: %v", err)
		}
	}
	got, err := s.ReadStream(t.Context(), "retried", 1)
	if err != nil {
		t.Fatal(err)
	}
	if !equalIDs(recordedIDs(got), ids(events)) {
		t.Fatalf("stream holds %v, want %v", recordedIDs(got), ids(events))
	}
}

func testDuplicateEventID(t *testing.T, s eventstore.Store) {
	ctx := t.Context()
	stored := NewEvents(2)
	mustAppend(t, s, "dup", eventstore.NoStream, stored)
	a, b := stored[0], stored[1]
	changed := a
	changed.Data = []byte(`{"different":true}`)

	cases := []struct {
		name     string
		stream   string
		expected eventstore.ExpectedVersion
		events   []eventstore.EventData
	}{
		{"same ID, different payload, later version", "dup", eventstore.Exact(2), []eventstore.EventData{changed}},
		{"same IDs with StreamExists, but they began the stream", "dup", eventstore.StreamExists, []eventstore.EventData{a, b}},
		{"same IDs, other order", "dup", eventstore.NoStream, []eventstore.EventData{b, a}},
		{"stored IDs plus a new one", "dup", eventstore.NoStream, []eventstore.EventData{a, b, NewEvent("TestEvent")}},
		{"new ID before a stored one", "dup", eventstore.Exact(2), []eventstore.EventData{NewEvent("TestEvent"), a}},
		{"same IDs, wrong exact version", "dup", eventstore.Exact(1), []eventstore.EventData{a, b}},
		{"same ID in another stream", "elsewhere", eventstore.NoStream, []eventstore.EventData{changed}},
		{"same ID in another stream with Any", "elsewhere", eventstore.Any, []eventstore.EventData{a}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := s.Append(ctx, c.stream, c.expected, c.events)
			if !errors.Is(err, eventstore.ErrDuplicateEventID) {
				t.Fatalf("got %v, want ErrDuplicateEventID", err)
			}
		})
	}
	if n := streamLen(t, s, "dup"); n != 2 {
		t.Fatalf("stream has %d events, want 2", n)
	}
	if n := streamLen(t, s, "elsewhere"); n != 0 {
		t.Fatalf("other stream has %d events, want none", n)
	}
	got, err := s.ReadStream(ctx, "dup", 1)
	if err != nil {
		t.Fatal(err)
	}
	if string(got[0].Data) != string(a.Data) {
		t.Fatalf("stored data changed to %s", got[0].Data)
	}
}

func testReadStream(t *testing.T, s eventstore.Store) {
	ctx := t.Context()
	before := time.Now().Add(-time.Second)
	var appended []eventstore.EventData
	for i, n := range []int{1, 2, 2} {
		batch := NewEvents(n)
		// Exact bytes, whitespace and key order included, come back.
		batch[0].Data = fmt.Appendf(nil, "{ \"z\" : %d,\n  \"a\" : [1, 2.50, \"x\"] }", i)
		batch[0].SchemaVersion = 3
		batch[0].Metadata.IdempotencyKey = "key-<&>"
		appended = append(appended, batch...)
		mustAppend(t, s, "read", eventstore.Any, batch)
	}
	mustAppend(t, s, "noise", eventstore.Any, NewEvents(2))
	after := time.Now().Add(time.Second)

	events, err := s.ReadStream(ctx, "read", 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != len(appended) {
		t.Fatalf("got %d events, want %d", len(events), len(appended))
	}
	prev := eventstore.Start
	for i, e := range events {
		want := appended[i]
		if e.StreamID != "read" || e.Version != int64(i+1) || e.ID != want.ID || e.Type != want.Type ||
			e.SchemaVersion != want.SchemaVersion || string(e.Data) != string(want.Data) || e.Metadata != want.Metadata {
			t.Fatalf("event %d: got %+v, want %+v at version %d", i, e, want, i+1)
		}
		var m eventstore.Metadata
		if err := json.Unmarshal(e.MetadataJSON, &m); err != nil || m != want.Metadata {
			t.Fatalf("event %d: MetadataJSON %s does not hold the metadata (%v)", i, e.MetadataJSON, err)
		}
		if e.RecordedAt.Location() != time.UTC || !e.RecordedAt.Equal(e.RecordedAt.Truncate(time.Microsecond)) ||
			e.RecordedAt.Before(before) || e.RecordedAt.After(after) {
			t.Fatalf("event %d: recorded at %v, want UTC, whole microseconds, between %v and %v", i, e.RecordedAt, before, after)
		}
		if !prev.Less(e.Position) {
			t.Fatalf("event %d: position %s does not follow %s", i, e.Position, prev)
		}
		prev = e.Position
	}

	for _, c := range []struct {
		from int64
		want int
	}{{0, 5}, {1, 5}, {3, 3}, {5, 1}, {6, 0}, {100, 0}} {
		got, err := s.ReadStream(ctx, "read", c.from)
		if err != nil {
			t.Fatalf("read from %d: %v", c.from, err)
		}
		if len(got) != c.want {
			t.Fatalf("read from %d: %d events, want %d", c.from, len(got), c.want)
		}
		if len(got) > 0 && got[0].Version != max(c.from, 1) {
			t.Fatalf("read from %d: first version %d", c.from, got[0].Version)
		}
	}
	if _, err := s.ReadStream(ctx, "unknown", 1); !errors.Is(err, eventstore.ErrStreamNotFound) {
		t.Fatalf("read unknown stream: got %v, want ErrStreamNotFound", err)
	}
}

// ChainVerifier is a store that verifies its own hash chains: every store of this module. The
// Verifier carries the store's chain key, if it has one.
type ChainVerifier interface {
	Verifier(ctx context.Context) (eventstore.Verifier, error)
}

// testHashChain: what a store appends verifies with its own Verifier, each event is hashed the
// way the store's key says (keyed with a key, plain SHA-256 without), an edited copy does not
// verify, and a verifier without the key refuses keyed events instead of passing them.
func testHashChain(t *testing.T, s eventstore.Store) {
	cv, ok := s.(ChainVerifier)
	if !ok {
		t.Fatalf("%T has no Verifier: every store must verify its own chains", s)
	}
	for i, n := range []int{1, 3, 2} {
		mustAppend(t, s, "chain-a", eventstore.Any, NewEvents(n))
		mustAppend(t, s, "chain-b", eventstore.Any, NewEvents(i+1))
	}
	v, err := cv.Verifier(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, stream := range []string{"chain-a", "chain-b"} {
		events, err := s.ReadStream(t.Context(), stream, 1)
		if err != nil {
			t.Fatal(err)
		}
		if err := v.VerifyChain(events); err != nil {
			t.Fatalf("%s as stored: %v", stream, err)
		}
		last := events[len(events)-1]
		if err := v.VerifyStream(stream, events, eventstore.Head{Version: last.Version, Hash: last.Hash}); err != nil {
			t.Fatalf("%s with its head: %v", stream, err)
		}
		want := eventstore.HashSHA256
		if v.Keyed() {
			want = eventstore.HashHMACSHA256
		}
		for _, e := range events {
			if e.HashAlg != want {
				t.Fatalf("%s version %d: hashed with %s, want %s", stream, e.Version, e.HashAlg, want)
			}
		}
		plainErr := eventstore.VerifyChain(events)
		if v.Keyed() != errors.Is(plainErr, eventstore.ErrChainKeyMissing) || v.Keyed() != (plainErr != nil) {
			t.Fatalf("%s without the key: %v (keyed store: %t)", stream, plainErr, v.Keyed())
		}

		edited := make([]eventstore.RecordedEvent, len(events))
		copy(edited, events)
		edited[1].Data = []byte(`{"n":-1}`)
		var ce *eventstore.ChainError
		if err := v.VerifyChain(edited); !errors.As(err, &ce) || ce.Problem != eventstore.ProblemHash || ce.Version != 2 {
			t.Fatalf("%s edited at version 2: got %v, want a hash problem at version 2", stream, err)
		}
	}
}

func testReadAllPaging(t *testing.T, s eventstore.Store) {
	ctx := t.Context()
	var appended []uuid.UUID
	for round := range 4 {
		for st := range 5 {
			batch := NewEvents(1 + (round+st)%3)
			mustAppend(t, s, fmt.Sprintf("page-%d", st), eventstore.Any, batch)
			appended = append(appended, ids(batch)...)
		}
	}
	paged := readAllEventually(t, s, eventstore.Start, 3, len(appended))
	checkGlobalOrder(t, paged)
	got := map[uuid.UUID]bool{}
	for _, e := range paged {
		got[e.ID] = true
	}
	for _, id := range appended {
		if !got[id] {
			t.Fatalf("event %s missing from the global log", id)
		}
	}
	// One big page gives the same order, and nothing follows the last event.
	whole, err := s.ReadAll(ctx, eventstore.Start, len(appended)+10)
	if err != nil {
		t.Fatal(err)
	}
	if !equalIDs(recordedIDs(whole), recordedIDs(paged)) {
		t.Fatal("one large page and small pages disagree on the order")
	}
	for i := range whole {
		if whole[i].Position != paged[i].Position {
			t.Fatalf("event %d: position %s in one page, %s when paged", i, whole[i].Position, paged[i].Position)
		}
	}
	rest, err := s.ReadAll(ctx, paged[len(paged)-1].Position, 10)
	if err != nil || len(rest) != 0 {
		t.Fatalf("after the last event: %d events, %v", len(rest), err)
	}
	// Paging from a position in the middle starts right after it.
	mid := paged[7].Position
	tail, err := s.ReadAll(ctx, mid, 2)
	if err != nil || len(tail) != 2 || tail[0].ID != paged[8].ID || tail[1].ID != paged[9].ID {
		t.Fatalf("read all from %s: %v, %v", mid, recordedIDs(tail), err)
	}
}

// Subscription runs Store.Subscribe in a goroutine and collects what it delivers, for tests.
type Subscription struct {
	events chan eventstore.RecordedEvent
	done   chan error
	cancel context.CancelFunc

	mu       sync.Mutex
	maxBatch int
}

// Subscribe starts a subscription on s from the given position; t's cleanup stops it.
func Subscribe(t *testing.T, s eventstore.Store, from eventstore.Position, batchSize int) *Subscription {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	sub := &Subscription{events: make(chan eventstore.RecordedEvent, 10000), done: make(chan error, 1), cancel: cancel}
	go func() {
		sub.done <- s.Subscribe(ctx, from, batchSize, func(_ context.Context, batch []eventstore.RecordedEvent) error {
			sub.mu.Lock()
			sub.maxBatch = max(sub.maxBatch, len(batch))
			sub.mu.Unlock()
			for _, e := range batch {
				sub.events <- e
			}
			return nil
		})
	}()
	t.Cleanup(func() {
		cancel()
		<-sub.done
	})
	return sub
}

// Next waits (up to a generous deadline) for the next n events and returns them.
func (sub *Subscription) Next(t *testing.T, n int) []eventstore.RecordedEvent {
	t.Helper()
	timeout := time.NewTimer(waitTimeout)
	defer timeout.Stop()
	out := make([]eventstore.RecordedEvent, 0, n)
	for len(out) < n {
		select {
		case e := <-sub.events:
			out = append(out, e)
		case err := <-sub.done:
			sub.done <- err // for the cleanup
			t.Fatalf("subscription ended after %d of %d events: %v", len(out), n, err)
		case <-timeout.C:
			t.Fatalf("subscription delivered %d of %d events within %s", len(out), n, waitTimeout)
		}
	}
	return out
}

// Delivered returns the events delivered but not yet taken by Next, without waiting.
func (sub *Subscription) Delivered() []eventstore.RecordedEvent {
	var out []eventstore.RecordedEvent
	for {
		select {
		case e := <-sub.events:
			out = append(out, e)
		default:
			return out
		}
	}
}

// Err waits (up to a generous deadline) for the subscription to end and returns its error.
func (sub *Subscription) Err(t *testing.T) error {
	t.Helper()
	select {
	case err := <-sub.done:
		sub.done <- err // for the cleanup
		return err
	case <-time.After(waitTimeout):
		t.Fatalf("subscription did not end within %s", waitTimeout)
		return nil
	}
}

// Stop cancels the subscription and checks that it returned the context's error.
func (sub *Subscription) Stop(t *testing.T) {
	t.Helper()
	sub.cancel()
	if err := sub.Err(t); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled subscription returned %v, want context.Canceled", err)
	}
}

func testSubscribeCatchUpThenLive(t *testing.T, s eventstore.Store) {
	var appended []uuid.UUID
	for i := range 5 {
		batch := NewEvents(1)
		mustAppend(t, s, fmt.Sprintf("sub-%d", i%3), eventstore.Any, batch)
		appended = append(appended, ids(batch)...)
	}
	catchUp := readAllEventually(t, s, eventstore.Start, 100, 5)

	sub := Subscribe(t, s, eventstore.Start, 2)
	got := sub.Next(t, 5)
	if !equalIDs(recordedIDs(got), recordedIDs(catchUp)) {
		t.Fatalf("catch-up delivered %v, the log holds %v", recordedIDs(got), recordedIDs(catchUp))
	}

	// Live: appended after the subscriber has caught up.
	var live []uuid.UUID
	for i := range 3 {
		batch := NewEvents(1 + i%2)
		mustAppend(t, s, fmt.Sprintf("sub-%d", i), eventstore.Any, batch)
		live = append(live, ids(batch)...)
	}
	got = append(got, sub.Next(t, len(live))...)
	checkGlobalOrder(t, got)
	all := readAllEventually(t, s, eventstore.Start, 100, len(appended)+len(live))
	if !equalIDs(recordedIDs(got), recordedIDs(all)) {
		t.Fatalf("subscription delivered %v, the log holds %v", recordedIDs(got), recordedIDs(all))
	}
	sub.mu.Lock()
	maxBatch := sub.maxBatch
	sub.mu.Unlock()
	if maxBatch > 2 {
		t.Fatalf("a batch held %d events, batch size is 2", maxBatch)
	}
	sub.Stop(t)
	if extra := sub.Delivered(); len(extra) > 0 {
		t.Fatalf("%d unexpected extra events", len(extra))
	}
}

func testSubscribeFromPosition(t *testing.T, s eventstore.Store) {
	for i := range 6 {
		mustAppend(t, s, fmt.Sprintf("from-%d", i%2), eventstore.Any, NewEvents(1))
	}
	all := readAllEventually(t, s, eventstore.Start, 100, 6)
	sub := Subscribe(t, s, all[2].Position, 10)
	got := sub.Next(t, 3)
	if !equalIDs(recordedIDs(got), recordedIDs(all[3:])) {
		t.Fatalf("from %s got %v, want %v", all[2].Position, recordedIDs(got), recordedIDs(all[3:]))
	}
	sub.Stop(t)
}

func testSubscribeHandlerError(t *testing.T, s eventstore.Store) {
	mustAppend(t, s, "fail", eventstore.NoStream, NewEvents(3))
	boom := errors.New("handler failed")
	calls := 0
	done := make(chan error, 1)
	go func() {
		done <- s.Subscribe(t.Context(), eventstore.Start, 1, func(context.Context, []eventstore.RecordedEvent) error {
			calls++
			return boom
		})
	}()
	select {
	case err := <-done:
		if err != boom { //nolint:errorlint // the contract returns the handler's error itself
			t.Fatalf("Subscribe returned %v, want the handler's error", err)
		}
		if calls != 1 {
			t.Fatalf("handler called %d times after failing", calls)
		}
	case <-time.After(waitTimeout):
		t.Fatalf("Subscribe did not return the handler's error within %s", waitTimeout)
	}
}

func testSubscribeContextCanceled(t *testing.T, s eventstore.Store) {
	// Canceled while live (waiting for appends).
	mustAppend(t, s, "cancel", eventstore.NoStream, NewEvents(1))
	sub := Subscribe(t, s, eventstore.Start, 10)
	sub.Next(t, 1)
	sub.Stop(t)

	// Canceled before it starts.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := s.Subscribe(ctx, eventstore.Start, 10, func(context.Context, []eventstore.RecordedEvent) error { return nil })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Subscribe with a canceled context returned %v", err)
	}
}

// testConcurrent appends from many goroutines at once, to their own streams, to one shared
// stream with Any, to one shared stream with exact versions (the losers retry), and to new
// streams that all goroutines create at the same moment, while a subscriber follows the log
// from the start. The subscriber must see every committed event exactly once, each stream's
// versions in order with no gap, and positions strictly increasing.
func testConcurrent(t *testing.T, s eventstore.Store) {
	const (
		writers    = 16
		ownStreams = 8
		rounds     = 6
		raceStream = 4 // new streams per round that every writer appends to at once
	)
	ctx := t.Context()

	// The subscriber checks order as it goes and stops at the first violation.
	var (
		mu       sync.Mutex
		seen     = map[uuid.UUID]eventstore.RecordedEvent{}
		order    []eventstore.RecordedEvent
		progress = make(chan struct{}, 1)
	)
	subCtx, stopSub := context.WithCancel(ctx)
	subDone := make(chan error, 1)
	go func() {
		versions := map[string]int64{}
		prev := eventstore.Start
		subDone <- s.Subscribe(subCtx, eventstore.Start, 100, func(_ context.Context, batch []eventstore.RecordedEvent) error {
			mu.Lock()
			defer mu.Unlock()
			for _, e := range batch {
				if !prev.Less(e.Position) {
					return fmt.Errorf("position %s after %s", e.Position, prev)
				}
				prev = e.Position
				if _, dup := seen[e.ID]; dup {
					return fmt.Errorf("event %s delivered twice", e.ID)
				}
				if want := versions[e.StreamID] + 1; e.Version != want {
					return fmt.Errorf("stream %q: version %d delivered after %d", e.StreamID, e.Version, want-1)
				}
				versions[e.StreamID] = e.Version
				seen[e.ID] = e
				order = append(order, e)
			}
			select {
			case progress <- struct{}{}:
			default:
			}
			return nil
		})
	}()

	// committed maps each event ID the store accepted to the stream and version it reported.
	type place struct {
		stream  string
		version int64
	}
	var (
		cmu       sync.Mutex
		committed = map[uuid.UUID]place{}
		conflicts atomic.Int64
	)
	record := func(stream string, res eventstore.AppendResult, batch []eventstore.EventData) {
		cmu.Lock()
		defer cmu.Unlock()
		first := res.NextExpectedVersion - int64(len(batch)) + 1
		for i, e := range batch {
			committed[e.ID] = place{stream, first + int64(i)}
		}
	}

	var wg sync.WaitGroup
	errs := make(chan error, writers)
	gate := newBarrier(writers)
	for w := range writers {
		wg.Go(func() {
			defer gate.abort() // a writer that stops early must not leave the others waiting
			own := make([]int64, ownStreams)
			exactGuess := int64(0)
			for r := range rounds {
				for k := range ownStreams {
					stream := fmt.Sprintf("own-%d-%d", w, k)
					batch := NewEvents(1 + (w+k+r)%3)
					res, err := s.Append(ctx, stream, eventstore.Exact(own[k]), batch)
					if err != nil {
						errs <- fmt.Errorf("writer %d: %s: %w", w, stream, err)
						return
					}
					own[k] = res.NextExpectedVersion
					record(stream, res, batch)
				}

				batch := NewEvents(1)
				res, err := s.Append(ctx, "shared-any", eventstore.Any, batch)
				if err != nil {
					errs <- fmt.Errorf("writer %d: shared-any: %w", w, err)
					return
				}
				record("shared-any", res, batch)

				batch = NewEvents(1)
				for {
					res, err := s.Append(ctx, "shared-exact", eventstore.Exact(exactGuess), batch)
					var wev *eventstore.WrongExpectedVersionError
					if errors.As(err, &wev) && errors.Is(err, eventstore.ErrWrongExpectedVersion) {
						conflicts.Add(1)
						exactGuess = wev.Actual // lost the race: retry on top of the winner
						continue
					}
					if err != nil {
						errs <- fmt.Errorf("writer %d: shared-exact: %w", w, err)
						return
					}
					exactGuess = res.NextExpectedVersion
					record("shared-exact", res, batch)
					break
				}

				// Every writer creates the round's race streams at the same moment.
				if !gate.wait() {
					return
				}
				for k := range raceStream {
					stream := fmt.Sprintf("race-%d-%d", r, k)
					batch := NewEvents(1)
					res, err := s.Append(ctx, stream, eventstore.Any, batch)
					if err != nil {
						errs <- fmt.Errorf("writer %d: %s: %w", w, stream, err)
						return
					}
					record(stream, res, batch)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	total := len(committed)
	if total < 2000 {
		t.Fatalf("only %d events appended; the test needs at least 2000", total)
	}
	t.Logf("%d events committed by %d writers; %d exact-version conflicts retried", total, writers, conflicts.Load())

	timeout := time.NewTimer(waitTimeout)
	defer timeout.Stop()
	for {
		mu.Lock()
		n := len(seen)
		mu.Unlock()
		if n >= total {
			break
		}
		select {
		case <-progress:
		case err := <-subDone:
			t.Fatalf("subscriber stopped after %d of %d events: %v", n, total, err)
		case <-timeout.C:
			t.Fatalf("subscriber saw %d of %d events within %s", n, total, waitTimeout)
		}
	}
	stopSub()
	if err := <-subDone; !errors.Is(err, context.Canceled) {
		t.Fatalf("subscriber: %v", err)
	}

	mu.Lock()
	defer mu.Unlock()
	if len(seen) != total {
		t.Fatalf("subscriber saw %d events, %d were committed", len(seen), total)
	}
	perStream := map[string]int64{}
	for id, p := range committed {
		e, ok := seen[id]
		if !ok {
			t.Fatalf("committed event %s never delivered", id)
		}
		if e.StreamID != p.stream || e.Version != p.version {
			t.Fatalf("event %s delivered as %s v%d, committed as %s v%d", id, e.StreamID, e.Version, p.stream, p.version)
		}
		perStream[p.stream] = max(perStream[p.stream], p.version)
	}
	for stream, last := range perStream {
		if n := streamLen(t, s, stream); int64(n) != last {
			t.Fatalf("stream %q holds %d events, last committed version %d", stream, n, last)
		}
	}
	// The subscription's order is the log's order.
	logged := readAllEventually(t, s, eventstore.Start, 500, total)
	for i := range logged {
		if logged[i].ID != order[i].ID || logged[i].Position != order[i].Position {
			t.Fatalf("event %d: subscriber saw %s at %s, the log has %s at %s",
				i, order[i].ID, order[i].Position, logged[i].ID, logged[i].Position)
		}
	}
}

// barrier lets n goroutines start something at the same moment, round after round.
type barrier struct {
	mu      sync.Mutex
	n, here int
	open    chan struct{}
	aborted chan struct{}
	once    sync.Once
}

func newBarrier(n int) *barrier {
	return &barrier{n: n, open: make(chan struct{}), aborted: make(chan struct{})}
}

// wait blocks until all n goroutines are waiting, or until abort; it reports which.
func (b *barrier) wait() bool {
	b.mu.Lock()
	open := b.open
	b.here++
	if b.here == b.n {
		close(b.open)
		b.open, b.here = make(chan struct{}), 0
	}
	b.mu.Unlock()
	select {
	case <-open:
		return true
	case <-b.aborted:
		select {
		case <-open: // opened before the abort: this round still runs
			return true
		default:
			return false
		}
	}
}

// abort releases every waiter for good.
func (b *barrier) abort() { b.once.Do(func() { close(b.aborted) }) }
