package tosssim

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	mrand "math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// payment is the simulator's truth about one payment. Guarded by Simulator.mu.
type payment struct {
	key, orderID, orderName, method string
	total, balance                  decimal.Decimal
	status                          Status
	requestedAt                     time.Time // truncated to the second, as shown
	authenticatedAt                 time.Time // exact: the confirm window runs from here
	approvedAt                      time.Time // zero until DONE
	lastTxKey                       string
	failure                         *failure
	approveNo                       string
	cancels                         []cancelRecord
	lastCancelAt                    time.Time // exact time of the last successful cancel
	approvals                       int
	// retired marks a payment replaced by a newer session of its order. Only a change and the
	// store see retired payments: memory keeps just their keys, so no new payment reuses one.
	retired bool
	// feeRate, when set, replaces Config.Settlement.FeeRate in the settlement rows of this
	// payment (SessionRequest.SettlementFeeRate, SetSettlementFeeRate). A change replaces the
	// pointer, never what it points at, so copies may share it.
	feeRate *decimal.Decimal

	confirmErr     string
	confirmErrLeft int // answers of confirmErr still due; negative means always
	confirmOutcome Status
	// confirming is set while a confirm that passed its checks has not decided yet. It lives
	// in memory only: a confirm cut short by a crash never answered, so the payment it leaves
	// IN_PROGRESS in the store is the truth.
	confirming bool
}

// cancelRecord is one entry of a payment's cancels[] (toss-api.md §5.2). The other fields of
// the wire shape are constants of the simulator.
type cancelRecord struct {
	reason         string
	at             time.Time // exact; shown to the second
	amount         decimal.Decimal
	refundable     decimal.Decimal // the balance after this cancel
	transactionKey string
}

func (c cancelRecord) wire() wireCancel {
	zero := won{decimal.Zero}
	return wireCancel{
		CancelReason:           c.reason,
		CanceledAt:             wireTime(c.at),
		CancelAmount:           won{c.amount},
		TaxFreeAmount:          zero,
		TaxExemptionAmount:     zero,
		RefundableAmount:       won{c.refundable},
		TransferDiscountAmount: zero,
		EasyPayDiscountAmount:  zero,
		TransactionKey:         c.transactionKey,
		CancelStatus:           "DONE",
	}
}

// transaction is one row of GET /v1/transactions (toss-api.md §6).
type transaction struct {
	key, paymentKey, orderID, method string
	status                           Status
	at                               time.Time // truncated to the second, as shown
	amount                           decimal.Decimal
}

// response is a finished answer: status and body, ready to write or to store for replay.
type response struct {
	status int
	body   []byte
}

func errorResponse(e *Error) response {
	body, err := marshal(wireError{Code: e.Code, Message: e.Message})
	if err != nil {
		return internalError()
	}
	return response{status: e.Status, body: body}
}

func internalError() response {
	return response{status: 500, body: []byte(`{"code":"FAILED_INTERNAL_SYSTEM_PROCESSING","message":"내부 시스템 처리 작업이 실패했습니다. 잠시 후 다시 시도해주세요."}`)}
}

func (s *Simulator) paymentResponse(p *payment) response {
	body, err := marshal(s.render(p))
	if err != nil {
		return internalError()
	}
	return response{status: 200, body: body}
}

// expireIfDue records in c that an IN_PROGRESS payment whose confirm window has passed is
// now EXPIRED, and returns the version to read from then on: c's copy if it expired, p
// otherwise. Every route calls it before it reads a payment, so expiry needs no background
// timer; the EXPIRED webhook goes out when the change is applied. Callers hold s.mu.
// A payment whose confirm is already in flight passed the window check and is left alone.
func (s *Simulator) expireIfDue(c *change, p *payment, now time.Time) *payment {
	if p.status != StatusInProgress || p.confirming || !now.After(p.authenticatedAt.Add(s.cfg.ConfirmWindow)) {
		return p
	}
	q := c.edit(p)
	q.status = StatusExpired
	f := expiredFailure
	q.failure = &f
	c.notify = append(c.notify, q)
	return q
}

const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

func randomAlnum(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = alnum[mrand.IntN(len(alnum))]
	}
	return string(b)
}

// newPaymentKey builds the newer key style of toss-api.md §5.3: the first five characters of
// the MID, yyyyMMddHHmmss in KST and five random alphanumerics. A key is never issued twice:
// not one of a live payment, nor one of a payment a newer session replaced (retiredKeys, which
// a persisted simulator reloads). Callers hold s.mu.
func (s *Simulator) newPaymentKey(now time.Time) string {
	prefix := s.cfg.MID
	if len(prefix) > 5 {
		prefix = prefix[:5]
	}
	stamp := now.In(kst).Format("20060102150405")
	for {
		k := prefix + stamp + randomAlnum(5)
		if s.byKey[k] == nil && !s.retiredKeys[k] {
			return k
		}
	}
}

// newTransactionKey returns 32 uppercase hex characters (§5.3), unique in the simulator and
// in c. Callers hold s.mu.
func (s *Simulator) newTransactionKey(c *change) string {
	for {
		b := make([]byte, 16)
		_, _ = rand.Read(b) // crypto/rand.Read never fails (Go ≥ 1.24)
		k := strings.ToUpper(hex.EncodeToString(b))
		if _, taken := s.txByKey[k]; !taken && !slices.ContainsFunc(c.txs, func(tx *transaction) bool { return tx.key == k }) {
			return k
		}
	}
}

// addTransaction adds a transaction row of p to c and returns its key. Callers hold s.mu.
func (s *Simulator) addTransaction(c *change, p *payment, st Status, amount decimal.Decimal, at time.Time) string {
	tx := &transaction{
		key:        s.newTransactionKey(c),
		paymentKey: p.key,
		orderID:    p.orderID,
		method:     p.method,
		status:     st,
		at:         at.Truncate(time.Second),
		amount:     amount,
	}
	c.txs = append(c.txs, tx)
	return tx.key
}

// confirm executes POST /v1/payments/confirm after the request was decoded and validated.
// It runs in two steps, so a concurrent duplicate sees the first one in flight: startConfirm
// checks and counts under s.mu, then, with no lock held, the test hook runs, and
// decideConfirm records the outcome.
func (s *Simulator) confirm(x *exchange, paymentKey, orderID string, amount decimal.Decimal) response {
	p, resp, proceed := s.startConfirm(x, paymentKey, orderID, amount)
	if !proceed {
		return resp
	}
	s.mu.Lock()
	hook := s.beforeConfirmCommit
	s.mu.Unlock()
	if hook != nil {
		hook(paymentKey)
	}
	return s.decideConfirm(x, p)
}

// startConfirm counts an executed confirm and checks it. It either answers the confirm
// (proceed false), or marks the payment in flight and returns it.
func (s *Simulator) startConfirm(x *exchange, paymentKey, orderID string, amount decimal.Decimal) (p *payment, resp response, proceed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.ConfirmsProcessed++
	c := s.countConfirm(orderID)
	if paymentKey == "" || orderID == "" || !amount.IsPositive() {
		return nil, s.finish(x, c, errorResponse(apiError("INVALID_REQUEST"))), false
	}
	live := s.byKey[paymentKey]
	if live == nil {
		return nil, s.finish(x, c, errorResponse(apiError("NOT_FOUND_PAYMENT_SESSION"))), false
	}
	p = s.expireIfDue(c, live, s.cfg.Now())
	if e := confirmRefusal(p); e != nil {
		return nil, s.finish(x, c, errorResponse(e)), false
	}
	if p.orderID != orderID || !p.total.Equal(amount) {
		return nil, s.finish(x, c, errorResponse(apiError("INVALID_REQUEST"))), false
	}
	// The count is saved now, without an answer: the confirm has executed, whatever its
	// outcome turns out to be.
	if err := s.commit(c); err != nil {
		return nil, s.storeFailed(x, "confirm", err), false
	}
	live.confirming = true // p is live: an expired payment was refused above
	return live, response{}, true
}

// countConfirm starts a change that counts one more executed confirm for orderID (none for an
// empty orderID). Callers hold s.mu.
func (s *Simulator) countConfirm(orderID string) *change {
	c := &change{}
	if orderID != "" {
		c.confirms = map[string]int{orderID: s.byOrderN[orderID] + 1}
	}
	return c
}

// decideConfirm records the outcome of a confirm that startConfirm let through.
func (s *Simulator) decideConfirm(x *exchange, live *payment) response {
	s.mu.Lock()
	defer s.mu.Unlock()
	live.confirming = false
	now := s.cfg.Now()
	c := &change{}
	p := c.edit(live)
	if p.confirmErr != "" && p.confirmErrLeft != 0 {
		if p.confirmErrLeft > 0 {
			p.confirmErrLeft--
		}
		e := apiError(p.confirmErr)
		outcome := p.confirmOutcome
		if outcome == "" {
			outcome = StatusAborted
			if unknownOutcomeCodes[e.Code] {
				outcome = StatusInProgress
			}
		}
		switch outcome {
		case StatusAborted:
			p.status = StatusAborted
			p.failure = &failure{Code: e.Code, Message: e.Message}
			c.notify = append(c.notify, p)
		case StatusDone:
			s.approve(c, p, now)
		default: // IN_PROGRESS: unchanged
		}
		return s.finish(x, c, errorResponse(e))
	}
	s.approve(c, p, now)
	return s.finish(x, c, s.paymentResponse(p))
}

// confirmRefusal is the answer to a confirm of p that cannot proceed, or nil.
func confirmRefusal(p *payment) *Error {
	if p.confirming {
		return apiError("ALREADY_PROCESSED_PAYMENT")
	}
	switch p.status {
	case StatusInProgress:
		return nil
	case StatusDone, StatusCanceled, StatusPartialCanceled, StatusAborted, StatusWaitingForDeposit:
		return apiError("ALREADY_PROCESSED_PAYMENT")
	case StatusExpired, StatusReady:
		return apiError("NOT_FOUND_PAYMENT_SESSION")
	default:
		panic(fmt.Sprintf("tosssim: unknown status %q", p.status))
	}
}

// approve moves p, a copy in c, to DONE and adds its approval transaction to c. Callers
// hold s.mu.
func (s *Simulator) approve(c *change, p *payment, now time.Time) {
	p.status = StatusDone
	p.approvedAt = now.Truncate(time.Second)
	p.failure = nil
	p.approveNo = fmt.Sprintf("%08d", mrand.IntN(100_000_000))
	p.lastTxKey = s.addTransaction(c, p, StatusDone, p.total, now)
	p.approvals++
	c.approvals++
	c.notify = append(c.notify, p)
}

// cancelRequest is a validated cancel body. amount and refundable are nil when absent.
type cancelRequest struct {
	reason     string
	amount     *decimal.Decimal
	refundable *decimal.Decimal
}

// cancel executes POST /v1/payments/{paymentKey}/cancel.
func (s *Simulator) cancel(x *exchange, paymentKey string, req cancelRequest) response {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.CancelsProcessed++
	c := &change{}
	p, e := s.decideCancel(c, paymentKey, req, s.cfg.Now())
	if e != nil {
		// c may hold an expiry the refusal found due: it is saved with the answer.
		return s.finish(x, c, errorResponse(e))
	}
	return s.finish(x, c, s.paymentResponse(p))
}

// decideCancel applies the cancel rules of toss-api.md §4.4 to the payment of paymentKey and
// records the cancel in c: the new balance and status, the cancels[] entry, the transaction
// row (from which the settlement row derives) and the webhook. It returns the payment as the
// cancel leaves it, or the refusal, in which case c holds at most an expiry that became due.
// The API cancel and the console cancel share it, so a console refund obeys the same rules,
// the 1-second rule included, and looks the same afterwards. Callers hold s.mu.
func (s *Simulator) decideCancel(c *change, paymentKey string, req cancelRequest, now time.Time) (*payment, *Error) {
	live := s.byKey[paymentKey]
	if live == nil {
		return nil, apiError("NOT_FOUND_PAYMENT")
	}
	p := s.expireIfDue(c, live, now)
	if !p.lastCancelAt.IsZero() && now.Sub(p.lastCancelAt) < consecutiveCancelGap {
		return nil, apiError("FORBIDDEN_CONSECUTIVE_REQUEST")
	}
	switch p.status {
	case StatusDone, StatusPartialCanceled:
	case StatusCanceled:
		return nil, apiError("ALREADY_CANCELED_PAYMENT")
	case StatusReady, StatusInProgress, StatusWaitingForDeposit, StatusAborted, StatusExpired:
		return nil, apiError("NOT_CANCELABLE_PAYMENT")
	default:
		panic(fmt.Sprintf("tosssim: unknown status %q", p.status))
	}
	if req.refundable != nil && !req.refundable.Equal(p.balance) {
		return nil, apiError("NOT_MATCHES_REFUNDABLE_AMOUNT")
	}
	amount := p.balance
	if req.amount != nil {
		amount = *req.amount
	}
	if amount.GreaterThan(p.balance) {
		return nil, apiError("NOT_CANCELABLE_AMOUNT")
	}

	p = c.edit(p)
	p.balance = p.balance.Sub(amount)
	p.status = StatusPartialCanceled
	if p.balance.IsZero() {
		p.status = StatusCanceled
	}
	txKey := s.addTransaction(c, p, p.status, amount, now)
	p.lastTxKey = txKey
	p.lastCancelAt = now
	rec := cancelRecord{reason: req.reason, at: now, amount: amount, refundable: p.balance, transactionKey: txKey}
	p.cancels = append(p.cancels, rec)
	c.cancels = append(c.cancels, newCancel{paymentKey: p.key, seq: len(p.cancels) - 1, record: rec})
	c.notify = append(c.notify, p) // every cancel, also a further partial one that stays PARTIAL_CANCELED
	return p, nil
}

// vatOf splits a tax-inclusive KRW amount: vat = round(amount/11), supplied = amount − vat.
// It reproduces every sample: 15000 → 13636 + 1364, 9026 → 8205 + 821, 163020 → 148200 + 14820.
func vatOf(amount decimal.Decimal) (supplied, vat decimal.Decimal) {
	vat = amount.Div(decimal.NewFromInt(11)).Round(0)
	return amount.Sub(vat), vat
}

func (s *Simulator) receiptURL(p *payment) string {
	return "https://dashboard-sandbox.tosspayments.com/receipt/redirection?transactionId=" + p.key + "&ref=PX"
}

// render builds the Payment object of toss-api.md §5 for p's current state.
func (s *Simulator) render(p *payment) wirePayment {
	supplied, vat := vatOf(p.balance)
	zero := won{decimal.Zero}
	w := wirePayment{
		MID:                s.cfg.MID,
		PaymentKey:         p.key,
		OrderID:            p.orderID,
		OrderName:          p.orderName,
		TaxExemptionAmount: zero,
		Status:             p.status,
		RequestedAt:        wireTime(p.requestedAt),
		ApprovedAt:         wireTimePtr(p.approvedAt),
		Type:               "NORMAL",
		Country:            "KR",
		Failure:            p.failure,
		// Card payments are partially cancelable; false would mean full cancels only.
		IsPartialCancelable: true,
		Checkout:            wireURL{URL: "https://api.tosspayments.com/v1/payments/" + p.key + "/checkout"},
		Currency:            "KRW",
		TotalAmount:         won{p.total},
		BalanceAmount:       won{p.balance},
		SuppliedAmount:      won{supplied},
		VAT:                 won{vat},
		TaxFreeAmount:       zero,
		Version:             apiVersion,
	}
	if p.lastTxKey != "" {
		k := p.lastTxKey
		w.LastTransactionKey = &k
	}
	for _, c := range p.cancels {
		w.Cancels = append(w.Cancels, c.wire())
	}
	switch p.status {
	case StatusInProgress, StatusReady, StatusExpired:
		// Before approval Toss shows method, useEscrow and receipt as null
		// (payment-in-progress.json, payment-expired.json).
		return w
	case StatusAborted:
		m := p.method
		w.Method = &m
		return w
	case StatusDone, StatusCanceled, StatusPartialCanceled, StatusWaitingForDeposit:
	default:
		panic(fmt.Sprintf("tosssim: unknown status %q", p.status))
	}
	m := p.method
	w.Method = &m
	escrow := false
	w.UseEscrow = &escrow
	w.Receipt = &wireURL{URL: s.receiptURL(p)}
	acquirer := "31"
	w.Card = &wireCard{
		IssuerCode:    "61",
		AcquirerCode:  &acquirer,
		Number:        "43301234****123*",
		ApproveNo:     p.approveNo,
		CardType:      "신용",
		OwnerType:     "개인",
		AcquireStatus: "READY",
		Amount:        won{p.total},
	}
	if p.method == "간편결제" {
		// A card charged through 토스페이, as in payment-done-easypay-card-docs.json.
		w.EasyPay = &wireEasyPay{Provider: "토스페이", Amount: zero, DiscountAmount: zero}
	}
	return w
}

func (s *Simulator) renderTransaction(tx *transaction) wireTransaction {
	return wireTransaction{
		MID:            s.cfg.MID,
		TransactionKey: tx.key,
		PaymentKey:     tx.paymentKey,
		OrderID:        tx.orderID,
		Method:         tx.method,
		UseEscrow:      false,
		ReceiptURL:     "https://dashboard-sandbox.tosspayments.com/receipt/redirection?transactionId=" + tx.paymentKey + "&ref=PX",
		Status:         tx.status,
		TransactionAt:  wireTime(tx.at),
		Currency:       "KRW",
		Amount:         won{tx.amount},
	}
}
