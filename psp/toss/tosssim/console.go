package tosssim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/shopspring/decimal"
)

// ConsoleCancel cancels a payment as the merchant's staff do in Toss's merchant console,
// without our API: the system under test learns of it only from the webhook, a lookup, or
// the transactions and settlements lists, which is what reconciliation must catch.
//
// amount nil cancels the whole balance; otherwise it is a partial cancel of that many won
// (whole, > 0). reason is the cancelReason (not blank, ≤ 200 characters). The cancel is the
// API cancel's in every respect: status, balance, a cancels[] entry with its own
// transactionKey and canceledAt, a transaction row, a settlement row and the
// PAYMENT_STATUS_CHANGED webhook; and it is refused as the API cancel is, the 1-second rule
// shared with API cancels of the same payment. There is no idempotency: each call is one
// console action.
//
// It returns the payment after the cancel, or an *Error: 400 INVALID_REQUEST for a bad amount
// or reason, 404 NOT_FOUND_PAYMENT, 403 FORBIDDEN_CONSECUTIVE_REQUEST, 400
// ALREADY_CANCELED_PAYMENT, 403 NOT_CANCELABLE_PAYMENT, 403 NOT_CANCELABLE_AMOUNT, or 500
// FAILED_INTERNAL_SYSTEM_PROCESSING, wrapping the cause, when a persisted simulator cannot save
// the cancel (which is then not applied).
func (s *Simulator) ConsoleCancel(paymentKey string, amount *decimal.Decimal, reason string) (PaymentView, error) {
	v, _, err := s.consoleCancel(paymentKey, amount, reason)
	return v, err
}

// consoleCancel is ConsoleCancel, also returning the Payment object the HTTP route answers,
// rendered under the same lock as the cancel so it shows exactly this cancel's outcome.
func (s *Simulator) consoleCancel(paymentKey string, amount *decimal.Decimal, reason string) (PaymentView, response, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.ConsoleCancels++
	if strings.TrimSpace(reason) == "" || utf8.RuneCountInString(reason) > maxCancelReasonLen ||
		(amount != nil && (!amount.IsInteger() || !amount.IsPositive())) {
		return PaymentView{}, response{}, apiError("INVALID_REQUEST")
	}
	req := cancelRequest{reason: reason}
	if amount != nil {
		a := *amount
		req.amount = &a
	}
	c := &change{}
	p, refusal := s.decideCancel(c, paymentKey, req, s.cfg.Now())
	// A refusal may still carry an expiry that became due; it is saved like any change.
	if err := s.commit(c); err != nil {
		s.logStoreFailure("console cancel", err)
		return PaymentView{}, response{}, fmt.Errorf("%w: %w", apiError("FAILED_INTERNAL_SYSTEM_PROCESSING"), err)
	}
	if refusal != nil {
		return PaymentView{}, response{}, refusal
	}
	return viewOf(p), s.paymentResponse(p), nil
}

// handleConsoleCancel is POST /sim/v1/console/payments/{paymentKey}/cancel with body
// {"cancelAmount"?: number or decimal string, "cancelReason": string}. Like the session route
// it stands in for something outside the API (the merchant console), so it takes no auth, no
// Idempotency-Key and no faults. It answers 200 with the Payment object, or the refusal in
// the API's error shape and status.
func (s *Simulator) handleConsoleCancel(w http.ResponseWriter, r *http.Request) {
	var req struct {
		CancelReason *string         `json:"cancelReason"`
		CancelAmount json.RawMessage `json:"cancelAmount"`
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil || json.Unmarshal(body, &req) != nil || req.CancelReason == nil {
		write(w, errorResponse(apiError("INVALID_REQUEST")))
		return
	}
	var amount *decimal.Decimal
	if !isJSONNull(req.CancelAmount) {
		a, err := parseAmount(req.CancelAmount, true)
		if err != nil {
			write(w, errorResponse(apiError("INVALID_REQUEST")))
			return
		}
		amount = &a
	}
	_, resp, err := s.consoleCancel(r.PathValue("paymentKey"), amount, *req.CancelReason)
	if err != nil {
		var e *Error
		if !errors.As(err, &e) {
			e = apiError("COMMON_ERROR")
		}
		write(w, errorResponse(e))
		return
	}
	write(w, resp)
}
