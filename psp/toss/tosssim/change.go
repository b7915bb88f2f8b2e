package tosssim

import (
	"net/http"
	"slices"
	"time"
)

// change is everything one operation alters: new versions of payments (copies, never the
// live ones), their new cancels, new transaction rows, new executed-confirm counts and, for a
// request under an Idempotency-Key, the answer to keep. An operation builds it while it
// decides, without touching the simulator's state; commit saves it, when the simulator is
// persisted, and only then applies it. So memory never shows a change the store does not
// have, and a change the store refused leaves no trace.
type change struct {
	payments  []*payment // in the order to save them: a retired payment before its successor
	cancels   []newCancel
	txs       []*transaction
	confirms  map[string]int // orderId → its new count of executed confirms
	answer    *storedAnswer
	notify    []*payment // status changes whose webhooks go out once the change is applied
	approvals int        // payments that became DONE, for Stats
}

// newCancel is a cancel added to a payment by a change: the entry at seq of its cancels[].
type newCancel struct {
	paymentKey string
	seq        int
	record     cancelRecord
}

// storedAnswer is the first answer under an idempotency scope, kept for replay.
type storedAnswer struct {
	scope    string
	firstUse time.Time
	resp     response
}

// edit returns the copy of p that c changes, making it on first use.
func (c *change) edit(p *payment) *payment {
	for _, q := range c.payments {
		if q.key == p.key {
			return q
		}
	}
	q := *p
	q.cancels = slices.Clone(p.cancels) // the copy appends; the live payment must not see it
	c.payments = append(c.payments, &q)
	return &q
}

// empty reports whether c alters no state (an answer alone is not state).
func (c *change) empty() bool {
	return len(c.payments) == 0 && len(c.txs) == 0 && len(c.confirms) == 0
}

// commit saves c, when the simulator is persisted, and then applies it to memory. Callers
// hold s.mu, so changes are saved in the order they are applied. An error means c was not
// applied; the store has it neither, except when the store lost its connection while saving
// (pgStore.save says how it then refuses every later change).
func (s *Simulator) commit(c *change) error {
	if c.empty() && c.answer == nil {
		return nil
	}
	if s.store != nil {
		if err := s.store.save(c); err != nil {
			return err
		}
	}
	s.apply(c)
	return nil
}

// apply makes c the simulator's truth and sends its webhooks. Callers hold s.mu.
func (s *Simulator) apply(c *change) {
	for _, p := range c.payments {
		live := s.byKey[p.key]
		switch {
		case p.retired:
			delete(s.byKey, p.key)
			s.retiredKeys[p.key] = true
		case live != nil:
			*live = *p // in place: a confirm in flight holds the live pointer
		default:
			s.byKey[p.key] = p
			s.byOrder[p.orderID] = p
		}
	}
	for _, tx := range c.txs {
		s.txs = append(s.txs, tx)
		s.txByKey[tx.key] = tx
	}
	for orderID, n := range c.confirms {
		s.byOrderN[orderID] = n
	}
	s.stats.Approvals += c.approvals
	for _, p := range c.notify {
		s.statusChanged(p)
	}
}

// exchange is one /v1 request as its endpoint sees it.
type exchange struct {
	r    *http.Request
	body []byte
	// idem is the request's idempotency claim; nil on GET and without an Idempotency-Key.
	idem *idemClaim
	// storeErr is set when a change of this request could not be saved: the answer is then a
	// 500 that is not kept under the idempotency key.
	storeErr error
}

// idemClaim is the idempotency scope a request owns while it runs.
type idemClaim struct {
	scope    string
	firstUse time.Time
	// saved reports that the answer was saved with the change that produced it, in one
	// transaction, so no crash can keep the one without the other.
	saved bool
}

// finish commits c with resp as the request's idempotent answer and returns resp, or a 500
// if the store refused. An endpoint whose request changed nothing returns its answer directly
// instead, and the api wrapper saves it alone. Callers hold s.mu.
func (s *Simulator) finish(x *exchange, c *change, resp response) response {
	if c.empty() {
		return resp
	}
	if x.idem != nil {
		c.answer = &storedAnswer{scope: x.idem.scope, firstUse: x.idem.firstUse, resp: resp}
	}
	if err := s.commit(c); err != nil {
		return s.storeFailed(x, "change", err)
	}
	if x.idem != nil {
		x.idem.saved = true
	}
	return resp
}

// storeFailed answers a request whose change could not be saved, as Toss answers an internal
// failure, and marks it so the answer is not kept under its idempotency key.
func (s *Simulator) storeFailed(x *exchange, what string, err error) response {
	s.logStoreFailure(what, err)
	x.storeErr = err
	return internalError()
}

// logStoreFailure tells the operator what a client only sees as a bare 500: what could not be
// saved (and so was not applied), and why.
func (s *Simulator) logStoreFailure(what string, err error) {
	s.log.Error("tosssim: a change could not be saved and was not applied", "change", what, "err", err)
}

// saveAnswer saves the answer of claim's request on its own, for a request that changed
// nothing (a refusal, say). It needs no s.mu: no state changes. A memory simulator has
// nothing to do.
func (s *Simulator) saveAnswer(claim *idemClaim, resp response) error {
	if s.store == nil {
		return nil
	}
	return s.store.save(&change{answer: &storedAnswer{scope: claim.scope, firstUse: claim.firstUse, resp: resp}})
}
