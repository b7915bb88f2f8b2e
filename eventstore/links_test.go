package eventstore_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/paymentledger/ledger/eventstore"
	"github.com/paymentledger/ledger/eventstore/eventstoretest"
	"github.com/paymentledger/ledger/internal/testenv"
)

// A LinkChecker sees a stream's events spread over batches, some of whose predecessors it never
// saw; it passes intact history, refuses an edited event and everything after it in its stream,
// and refuses a stream already listed as broken from its first event.
func TestLinkCheckerAcrossBatches(t *testing.T) {
	s, pool := newPostgres(t)
	ctx := context.Background()
	for _, stream := range []string{"a", "b"} {
		mustAppend(t, s, stream, eventstore.NoStream, eventstoretest.NewEvents(4))
	}
	var all []eventstore.RecordedEvent
	testenv.WaitFor(t, 10*time.Second, "the 8 events readable", func() bool {
		var err error
		all, err = s.ReadAll(ctx, eventstore.Start, 100)
		return err == nil && len(all) == 8
	})

	c, err := s.NewLinkChecker(ctx, 16)
	if err != nil {
		t.Fatal(err)
	}
	// From the middle: the predecessors of a's and b's first events here are read from the store.
	for _, batch := range [][]eventstore.RecordedEvent{all[2:5], all[5:]} {
		broken, err := c.Check(ctx, batch)
		if err != nil || len(broken) != 0 {
			t.Fatalf("intact history: %v, %v", broken, err)
		}
	}

	tamper(t, pool, `UPDATE events SET data = '{"n": 999}' WHERE stream_id = 'a' AND version = 3`)
	all, err = s.ReadAll(ctx, eventstore.Start, 100)
	if err != nil {
		t.Fatal(err)
	}
	c, err = s.NewLinkChecker(ctx, 16)
	if err != nil {
		t.Fatal(err)
	}
	broken, err := c.Check(ctx, all)
	if err != nil {
		t.Fatal(err)
	}
	if len(broken) != 1 || broken["a"].From != 3 || !errors.Is(broken["a"].Err, eventstore.ErrChainBroken) {
		t.Fatalf("broken %v, want a from version 3", broken)
	}
	for _, e := range all {
		if want := e.StreamID == "a" && e.Version >= 3; broken[e.StreamID].Refuses(e) != want {
			t.Errorf("%s v%d refused: %t, want %t", e.StreamID, e.Version, !want, want)
		}
	}
	// Listed now: a later reader refuses the whole stream, even events that verify alone.
	first := all[slices.IndexFunc(all, func(e eventstore.RecordedEvent) bool { return e.StreamID == "a" && e.Version == 1 })]
	broken, err = c.Check(ctx, []eventstore.RecordedEvent{first})
	if err != nil {
		t.Fatal(err)
	}
	if b := broken["a"]; b.From != 1 || !b.Refuses(first) {
		t.Fatalf("a listed stream: %+v, want refused from version 1", b)
	}
}
