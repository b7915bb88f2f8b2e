package httpapi

import (
	"net/http"

	"github.com/gorilla/mux"

	"github.com/paymentledger/ledger/commands"
	"github.com/paymentledger/ledger/domain"
)

type cancelRequest struct {
	Amount amount `json:"amount"` // optional: absent cancels the whole balance
	Reason string `json:"reason"`
}

type cancelResponse struct {
	OrderID       string       `json:"orderId"`
	CancelID      string       `json:"cancelId"`
	Amount        string       `json:"amount"`
	CancelStatus  string       `json:"cancelStatus"` // CANCELED, REJECTED or PENDING
	PaymentStatus string       `json:"paymentStatus"`
	Balance       string       `json:"balance"`
	Failure       *failureBody `json:"failure,omitempty"`
}

// cancel serves POST /api/v1/payments/{orderId}/cancel.
func (s *Server) cancel(w http.ResponseWriter, r *http.Request) {
	orderID, err := domain.ParseOrderID(mux.Vars(r)["orderId"])
	if err != nil {
		writeError(w, r, s.logger, err)
		return
	}
	noteOrder(r, orderID)
	var req cancelRequest
	if err := decodeJSON(w, r, &req); err != nil {
		writeError(w, r, s.logger, err)
		return
	}
	in := commands.CancelInput{Merchant: principalOf(r.Context()).Merchant, OrderID: orderID,
		IdempotencyKey: r.Header.Get("Idempotency-Key"), Reason: req.Reason}
	if req.Amount.set {
		amt, err := req.Amount.parse("amount", domain.KRW)
		if err != nil {
			writeError(w, r, s.logger, err)
			return
		}
		in.Amount = &amt
	}
	res, err := s.commands.Cancel(r.Context(), in)
	if err != nil {
		writeError(w, r, s.logger, err)
		return
	}
	body := cancelResponse{
		OrderID: string(res.OrderID), CancelID: string(res.CancelID), Amount: res.Amount.String(),
		CancelStatus: string(res.CancelStatus), PaymentStatus: string(res.PaymentStatus), Balance: res.Balance.String(),
	}
	if res.Failure != nil {
		body.Failure = &failureBody{Code: res.Failure.Code, Message: res.Failure.Message}
	}
	writeJSON(w, http.StatusOK, body)
}
