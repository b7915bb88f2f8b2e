package tosssim

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	mrand "math/rand/v2"
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
	cancels                         []wireCancel
	lastCancelAt                    time.Time // exact time of the last successful cancel
	approvals                       int

	confirmErr     string
	confirmErrLeft int // answers of confirmErr still due; negative means always
	confirmOutcome Status
	confirming     bool // a confirm passed its checks and has not decided yet
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

// expireIfDue turns an IN_PROGRESS payment whose confirm window has passed into EXPIRED.
// Every route calls it before it reads a payment, so expiry needs no background timer; the
// EXPIRED webhook goes out when that happens. Callers hold s.mu.
// A payment whose confirm is already in flight passed the window check and is left alone.
func (s *Simulator) expireIfDue(p *payment, now time.Time) {
	if p.status != StatusInProgress || p.confirming {
		return
	}
	if now.After(p.authenticatedAt.Add(s.cfg.ConfirmWindow)) {
		p.status = StatusExpired
		f := expiredFailure
		p.failure = &f
		s.statusChanged(p)
	}
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
// the MID, yyyyMMddHHmmss in KST and five random alphanumerics. Callers hold s.mu.
func (s *Simulator) newPaymentKey(now time.Time) string {
	prefix := s.cfg.MID
	if len(prefix) > 5 {
		prefix = prefix[:5]
	}
	stamp := now.In(kst).Format("20060102150405")
	for {
		k := prefix + stamp + randomAlnum(5)
		if _, taken := s.byKey[k]; !taken {
			return k
		}
	}
}

// newTransactionKey returns 32 uppercase hex characters (§5.3), unique in the simulator.
// Callers hold s.mu.
func (s *Simulator) newTransactionKey() string {
	for {
		b := make([]byte, 16)
		_, _ = rand.Read(b) // crypto/rand.Read never fails (Go ≥ 1.24)
		k := strings.ToUpper(hex.EncodeToString(b))
		if _, taken := s.txByKey[k]; !taken {
			return k
		}
	}
}

// addTransaction appends a transaction row and returns its key. Callers hold s.mu.
func (s *Simulator) addTransaction(p *payment, st Status, amount decimal.Decimal, at time.Time) string {
	tx := &transaction{
		key:        s.newTransactionKey(),
		paymentKey: p.key,
		orderID:    p.orderID,
		method:     p.method,
		status:     st,
		at:         at.Truncate(time.Second),
		amount:     amount,
	}
	s.txs = append(s.txs, tx)
	s.txByKey[tx.key] = tx
	return tx.key
}

// confirm executes POST /v1/payments/confirm after the request was decoded and validated.
func (s *Simulator) confirm(paymentKey, orderID string, amount decimal.Decimal) response {
	s.mu.Lock()
	s.stats.ConfirmsProcessed++
	if orderID != "" {
		s.byOrderN[orderID]++
	}
	if paymentKey == "" || orderID == "" || !amount.IsPositive() {
		s.mu.Unlock()
		return errorResponse(apiError("INVALID_REQUEST"))
	}
	p := s.byKey[paymentKey]
	if p == nil {
		s.mu.Unlock()
		return errorResponse(apiError("NOT_FOUND_PAYMENT_SESSION"))
	}
	s.expireIfDue(p, s.cfg.Now())
	if e := confirmRefusal(p); e != nil {
		s.mu.Unlock()
		return errorResponse(e)
	}
	if p.orderID != orderID || !p.total.Equal(amount) {
		s.mu.Unlock()
		return errorResponse(apiError("INVALID_REQUEST"))
	}
	p.confirming = true
	hook := s.beforeConfirmCommit
	s.mu.Unlock()

	if hook != nil {
		hook(paymentKey)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	p.confirming = false
	now := s.cfg.Now()
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
			s.statusChanged(p)
		case StatusDone:
			s.approve(p, now)
		default: // IN_PROGRESS: unchanged
		}
		return errorResponse(e)
	}
	s.approve(p, now)
	return s.paymentResponse(p)
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

// approve moves p to DONE and records its approval transaction. Callers hold s.mu.
func (s *Simulator) approve(p *payment, now time.Time) {
	p.status = StatusDone
	p.approvedAt = now.Truncate(time.Second)
	p.failure = nil
	p.approveNo = fmt.Sprintf("%08d", mrand.IntN(100_000_000))
	p.lastTxKey = s.addTransaction(p, StatusDone, p.total, now)
	p.approvals++
	s.stats.Approvals++
	s.statusChanged(p)
}

// cancelRequest is a validated cancel body. amount and refundable are nil when absent.
type cancelRequest struct {
	reason     string
	amount     *decimal.Decimal
	refundable *decimal.Decimal
}

// cancel executes POST /v1/payments/{paymentKey}/cancel.
func (s *Simulator) cancel(paymentKey string, req cancelRequest) response {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.cfg.Now()
	s.stats.CancelsProcessed++
	p := s.byKey[paymentKey]
	if p == nil {
		return errorResponse(apiError("NOT_FOUND_PAYMENT"))
	}
	s.expireIfDue(p, now)
	if !p.lastCancelAt.IsZero() && now.Sub(p.lastCancelAt) < consecutiveCancelGap {
		return errorResponse(apiError("FORBIDDEN_CONSECUTIVE_REQUEST"))
	}
	switch p.status {
	case StatusDone, StatusPartialCanceled:
	case StatusCanceled:
		return errorResponse(apiError("ALREADY_CANCELED_PAYMENT"))
	case StatusReady, StatusInProgress, StatusWaitingForDeposit, StatusAborted, StatusExpired:
		return errorResponse(apiError("NOT_CANCELABLE_PAYMENT"))
	default:
		panic(fmt.Sprintf("tosssim: unknown status %q", p.status))
	}
	if req.refundable != nil && !req.refundable.Equal(p.balance) {
		return errorResponse(apiError("NOT_MATCHES_REFUNDABLE_AMOUNT"))
	}
	amount := p.balance
	if req.amount != nil {
		amount = *req.amount
	}
	if amount.GreaterThan(p.balance) {
		return errorResponse(apiError("NOT_CANCELABLE_AMOUNT"))
	}

	p.balance = p.balance.Sub(amount)
	p.status = StatusPartialCanceled
	if p.balance.IsZero() {
		p.status = StatusCanceled
	}
	txKey := s.addTransaction(p, p.status, amount, now)
	p.lastTxKey = txKey
	p.lastCancelAt = now
	zero := won{decimal.Zero}
	p.cancels = append(p.cancels, wireCancel{
		CancelReason:           req.reason,
		CanceledAt:             wireTime(now),
		CancelAmount:           won{amount},
		TaxFreeAmount:          zero,
		TaxExemptionAmount:     zero,
		RefundableAmount:       won{p.balance},
		TransferDiscountAmount: zero,
		EasyPayDiscountAmount:  zero,
		TransactionKey:         txKey,
		CancelStatus:           "DONE",
	})
	s.statusChanged(p) // every cancel, also a further partial one that stays PARTIAL_CANCELED
	return s.paymentResponse(p)
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
	if len(p.cancels) > 0 {
		w.Cancels = append([]wireCancel(nil), p.cancels...)
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
