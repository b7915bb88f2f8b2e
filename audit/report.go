package audit

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// Kind is the closed set of problems an audit reports.
type Kind string

const (
	// KindHashMismatch: an event's stored hash does not match its contents (edited after it was
	// hashed), a plain hash stands where the chain key requires a keyed one (a downgrade), or
	// the stream's head names another hash than its last event's.
	KindHashMismatch Kind = "hash_mismatch"
	// KindChainBroken: the chain does not hold together: versions out of sequence or out of
	// global-log order, a prev_hash that does not link, keyed events and no key to check them,
	// events beyond the head, or a chain key activation record that was altered or deleted.
	KindChainBroken Kind = "chain_broken"
	// KindTailMissing: the stream's head is ahead of its events: its last events were deleted.
	KindTailMissing Kind = "tail_missing"
	// KindStreamMissing: a stream named by other evidence no longer has events: a seal's leaf, a
	// head row, or a read model row (payment_orders, ledger_orders, merchants).
	KindStreamMissing Kind = "stream_missing"
	// KindIllegalTransition: a stream's events, though intact, are not a history the state
	// machine allows (domain.CheckHistory for payments, the merchant fold for merchants).
	KindIllegalTransition Kind = "illegal_transition"
	// KindUnbalancedEntry: the books do not balance: a journal entry, a merchant's trial
	// balance, or a seller's wallet against its payable account or its entry.
	KindUnbalancedEntry Kind = "unbalanced_entry"
	// KindProjectionDrift: a read model differs from what the event log says it should hold.
	KindProjectionDrift Kind = "projection_drift"
	// KindSealMismatch: history differs from a signed seal, or a seal is missing, altered or
	// not signed by the audit key.
	KindSealMismatch Kind = "seal_mismatch"
)

// Problem is one finding. Stream and Version name where it is when that is known (Version 0:
// the stream as a whole, or no single event).
type Problem struct {
	Kind    Kind   `json:"kind"`
	Stream  string `json:"stream"`
	Version int64  `json:"version"`
	Detail  string `json:"detail"`
}

func (p Problem) String() string {
	where := p.Stream
	if p.Version > 0 {
		where += fmt.Sprintf(" version %d", p.Version)
	}
	if where == "" {
		return fmt.Sprintf("%s: %s", p.Kind, p.Detail)
	}
	return fmt.Sprintf("%s: %s: %s", p.Kind, where, p.Detail)
}

// Report is the outcome of an audit: OK when it found no problem.
type Report struct {
	OK       bool      `json:"ok"`
	Streams  int64     `json:"streams"` // streams read (with events, a head or a seal leaf)
	Events   int64     `json:"events"`  // events read
	Problems []Problem `json:"problems"`
}

// DriftChecker compares the read models with a fresh replay of the event log and returns a
// KindProjectionDrift problem for each difference. The audit calls it after its own checks
// when it is given one. Cancelling ctx stops it with ctx's error.
type DriftChecker interface {
	Drift(ctx context.Context) ([]Problem, error)
}

// sortProblems orders problems by stream, version and kind; problems of no stream first.
func sortProblems(ps []Problem) {
	slices.SortStableFunc(ps, func(a, b Problem) int {
		if c := strings.Compare(a.Stream, b.Stream); c != 0 {
			return c
		}
		if a.Version != b.Version {
			if a.Version < b.Version {
				return -1
			}
			return 1
		}
		return strings.Compare(string(a.Kind), string(b.Kind))
	})
}
