package eventstore_test

import (
	"errors"
	"testing"

	"github.com/paymentledger/ledger/eventstore"
	"github.com/paymentledger/ledger/eventstore/eventstoretest"
)

func TestMemoryConformance(t *testing.T) {
	eventstoretest.Run(t, func(*testing.T) eventstore.Store { return eventstore.NewMemory() })
}

func TestMemoryHashChain(t *testing.T) {
	s := eventstore.NewMemory()
	for _, n := range []int{1, 3, 2} {
		if _, err := s.Append(t.Context(), "chain", eventstore.Any, eventstoretest.NewEvents(n)); err != nil {
			t.Fatal(err)
		}
	}
	events, err := s.ReadStream(t.Context(), "chain", 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := eventstore.VerifyChain(events); err != nil {
		t.Fatalf("untouched chain: %v", err)
	}
	events[1].Data[len(events[1].Data)-2]++ // the copy, not the store
	if err := eventstore.VerifyChain(events); !errors.Is(err, eventstore.ErrChainBroken) {
		t.Fatalf("tampered chain: got %v, want ErrChainBroken", err)
	}
	again, err := s.ReadStream(t.Context(), "chain", 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := eventstore.VerifyChain(again); err != nil {
		t.Fatalf("changing a read copy changed the store: %v", err)
	}
}

func TestMemoryConformanceKeyed(t *testing.T) {
	eventstoretest.Run(t, func(t *testing.T) eventstore.Store {
		return eventstore.NewMemory(eventstore.WithChainKey(newChainKey(t)))
	})
}
