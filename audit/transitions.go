package audit

import (
	"fmt"
	"strings"

	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/eventstore"
)

// Stream name prefixes of the aggregates (domain.StreamName, domain.MerchantStreamName).
const (
	paymentPrefix  = "payment-"
	merchantPrefix = "merchant-"
)

// checkTransitions checks that a stream's events are a history its aggregate allows: every
// event readable, every event of the stream's own aggregate, and the sequence legal under the
// state machine (domain.CheckHistory) or the merchant's fold (domain.Merchant.Apply). It
// reports the first illegal event only: what follows it was decided on a state that should not
// exist.
func checkTransitions(stream string, recs []eventstore.RecordedEvent) []Problem {
	illegal := func(version int64, format string, args ...any) []Problem {
		return []Problem{{Kind: KindIllegalTransition, Stream: stream, Version: version, Detail: fmt.Sprintf(format, args...)}}
	}
	var kind string
	switch {
	case strings.HasPrefix(stream, paymentPrefix):
		kind = "payment"
	case strings.HasPrefix(stream, merchantPrefix):
		kind = "merchant"
	default:
		return illegal(0, "not the stream of a known aggregate (%s<orderId> or %s<merchantId>)", paymentPrefix, merchantPrefix)
	}
	events := make([]domain.Event, 0, len(recs))
	for _, r := range recs {
		e, err := domain.UnmarshalEvent(r.Type, r.SchemaVersion, r.Data)
		if err != nil {
			return illegal(r.Version, "cannot be read: %v", err)
		}
		events = append(events, e)
	}

	if kind == "merchant" {
		id := domain.MerchantID(strings.TrimPrefix(stream, merchantPrefix))
		if _, ok := events[0].(domain.MerchantRegistered); !ok {
			return illegal(1, "a merchant's history starts with %s, not %s", domain.EventMerchantRegistered, events[0].EventType())
		}
		var m domain.Merchant
		for i, e := range events {
			if got := e.Header().MerchantID; got != id {
				return illegal(recs[i].Version, "%s of merchant %q in the stream of merchant %q", e.EventType(), got, id)
			}
			if i > 0 {
				if _, again := e.(domain.MerchantRegistered); again {
					return illegal(recs[i].Version, "a second %s", domain.EventMerchantRegistered)
				}
			}
			if err := m.Apply(e); err != nil {
				return illegal(recs[i].Version, "%v", err)
			}
		}
		return nil
	}

	order := domain.OrderID(strings.TrimPrefix(stream, paymentPrefix))
	merchant := events[0].Header().MerchantID
	for i, e := range events {
		h := e.Header()
		if h.OrderID != order {
			return illegal(recs[i].Version, "%s of order %q in the stream of order %q", e.EventType(), h.OrderID, order)
		}
		if h.MerchantID != merchant {
			return illegal(recs[i].Version, "%s of merchant %q in an order of merchant %q", e.EventType(), h.MerchantID, merchant)
		}
	}
	err := domain.CheckHistory(events)
	if err == nil {
		return nil
	}
	// CheckHistory names the event by its place; find it by the shortest failing prefix, which
	// costs more only for a stream that fails.
	for n := 1; n <= len(events); n++ {
		if perr := domain.CheckHistory(events[:n]); perr != nil {
			return illegal(recs[n-1].Version, "%v", perr)
		}
	}
	return illegal(0, "%v", err)
}
