// Package httpapi is the HTTP adapter: routes, JSON decoding and encoding, and the one table that
// maps domain error kinds to status codes. It holds no business rules: handlers decode, call
// commands or queries, and encode.
package httpapi

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/gorilla/mux"

	"github.com/paymentledger/ledger/commands"
	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/queries"
)

// Commands is the command side the API needs.
type Commands interface {
	Checkout(ctx context.Context, in commands.CheckoutInput) (commands.CheckoutResult, error)
	Confirm(ctx context.Context, in commands.ConfirmInput) (commands.ConfirmResult, error)
	Cancel(ctx context.Context, in commands.CancelInput) (commands.CancelResult, error)
}

// Queries is the read side the API needs.
type Queries interface {
	Payment(ctx context.Context, orderID string) (queries.Payment, error)
	ListPayments(ctx context.Context, q queries.ListQuery) (queries.Page, error)
}

var (
	_ Commands = (*commands.Service)(nil)
	_ Queries  = (*queries.Service)(nil)
)

// Server serves the command and query APIs.
type Server struct {
	commands Commands
	queries  Queries
	ledger   LedgerQueries // optional: set by WithLedger
	ready    func(context.Context) error
	logger   *slog.Logger
	router   *mux.Router
	// actingFor is the merchant every request acts for until API keys are checked.
	actingFor domain.MerchantID
}

// ActingFor makes every request act for merchant m. It stands in for API-key authentication,
// which replaces it.
func (s *Server) ActingFor(m domain.MerchantID) *Server {
	s.actingFor = m
	return s
}

// New builds the router. ready reports whether the service can take traffic (/readyz).
// Extra handlers (such as an in-process simulator) can be mounted with Handle.
func New(c Commands, q Queries, ready func(context.Context) error, logger *slog.Logger) *Server {
	s := &Server{commands: c, queries: q, ready: ready, logger: logger, router: mux.NewRouter()}
	r := s.router
	r.HandleFunc("/healthz", s.healthz).Methods(http.MethodGet)
	r.HandleFunc("/readyz", s.readyz).Methods(http.MethodGet)
	api := r.PathPrefix("/api/v1").Subrouter()
	api.HandleFunc("/payments/checkout", s.checkout).Methods(http.MethodPost)
	api.HandleFunc("/payments/confirm", s.confirm).Methods(http.MethodPost)
	api.HandleFunc("/payments/{orderId}/cancel", s.cancel).Methods(http.MethodPost)
	api.HandleFunc("/payments", s.listPayments).Methods(http.MethodGet)
	api.HandleFunc("/payments/{orderId}", s.getPayment).Methods(http.MethodGet)
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, s.logger, &apiError{Status: http.StatusNotFound, Code: "NOT_FOUND", Message: "no route for " + r.Method + " " + r.URL.Path})
	})
	r.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, s.logger, &apiError{Status: http.StatusMethodNotAllowed, Code: "METHOD_NOT_ALLOWED", Message: r.Method + " is not allowed on " + r.URL.Path})
	})
	return s
}

// Handle mounts h under the path prefix.
func (s *Server) Handle(prefix string, h http.Handler) {
	s.router.PathPrefix(prefix).Handler(http.StripPrefix(prefix, h))
}

// ServeHTTP implements http.Handler with panic recovery and an access log.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	defer func() {
		if p := recover(); p != nil {
			s.logger.ErrorContext(r.Context(), "panic", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			if !rec.wrote {
				writeError(rec, r, s.logger, &apiError{Status: http.StatusInternalServerError, Code: "INTERNAL", Message: "internal error; it has been logged"})
			}
		}
		s.logger.InfoContext(r.Context(), "http", "method", r.Method, "path", r.URL.Path,
			"status", rec.status, "ms", time.Since(start).Milliseconds())
	}()
	if s.actingFor != "" {
		r = r.WithContext(withPrincipal(r.Context(), Principal{Merchant: s.actingFor, Scopes: domain.AllScopes}))
	}
	s.router.ServeHTTP(rec, r)
}

type statusRecorder struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (s *statusRecorder) WriteHeader(code int) {
	if !s.wrote {
		s.status, s.wrote = code, true
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	s.wrote = true
	return s.ResponseWriter.Write(b)
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.ready(ctx); err != nil {
		s.logger.WarnContext(r.Context(), "not ready", "error", err)
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "reason": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

type checkoutRequest struct {
	OrderName string `json:"orderName"`
	BuyerID   string `json:"buyerId"`
	Lines     []struct {
		SellerID  string `json:"sellerId"`
		ProductID string `json:"productId"`
		Amount    amount `json:"amount"`
	} `json:"lines"`
}

type checkoutResponse struct {
	OrderID   string `json:"orderId"`
	OrderName string `json:"orderName"`
	Amount    string `json:"amount"`
	Currency  string `json:"currency"`
	Status    string `json:"status"`
}

func (s *Server) checkout(w http.ResponseWriter, r *http.Request) {
	var req checkoutRequest
	if err := decodeJSON(w, r, &req); err != nil {
		writeError(w, r, s.logger, err)
		return
	}
	in := commands.CheckoutInput{
		IdempotencyKey: r.Header.Get("Idempotency-Key"),
		OrderName:      req.OrderName,
		BuyerID:        req.BuyerID,
	}
	for i, l := range req.Lines {
		amt, err := l.Amount.parse(fmt.Sprintf("lines[%d].amount", i), domain.KRW)
		if err != nil {
			writeError(w, r, s.logger, err)
			return
		}
		in.Lines = append(in.Lines, domain.CheckoutLine{SellerID: l.SellerID, ProductID: l.ProductID, Amount: amt})
	}
	res, err := s.commands.Checkout(r.Context(), in)
	if err != nil {
		writeError(w, r, s.logger, err)
		return
	}
	if res.Replayed {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	writeJSON(w, http.StatusCreated, checkoutResponse{
		OrderID: string(res.OrderID), OrderName: res.OrderName, Amount: res.Amount.String(),
		Currency: string(res.Currency), Status: string(res.Status),
	})
}

type confirmRequest struct {
	PaymentKey string `json:"paymentKey"`
	OrderID    string `json:"orderId"`
	Amount     amount `json:"amount"`
}

type confirmResponse struct {
	OrderID    string       `json:"orderId"`
	PaymentKey string       `json:"paymentKey"`
	Status     string       `json:"status"`
	ApprovedAt *time.Time   `json:"approvedAt,omitempty"`
	Failure    *failureBody `json:"failure,omitempty"`
}

type failureBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (s *Server) confirm(w http.ResponseWriter, r *http.Request) {
	var req confirmRequest
	if err := decodeJSON(w, r, &req); err != nil {
		writeError(w, r, s.logger, err)
		return
	}
	orderID, err := domain.ParseOrderID(req.OrderID)
	if err != nil {
		writeError(w, r, s.logger, err)
		return
	}
	key, err := domain.ParsePaymentKey(req.PaymentKey)
	if err != nil {
		writeError(w, r, s.logger, err)
		return
	}
	amt, err := req.Amount.parse("amount", domain.KRW)
	if err != nil {
		writeError(w, r, s.logger, err)
		return
	}
	res, err := s.commands.Confirm(r.Context(), commands.ConfirmInput{PaymentKey: key, OrderID: orderID, Amount: amt})
	if err != nil {
		writeError(w, r, s.logger, err)
		return
	}
	body := confirmResponse{OrderID: string(res.OrderID), PaymentKey: string(res.PaymentKey), Status: string(res.Status)}
	if !res.ApprovedAt.IsZero() {
		body.ApprovedAt = &res.ApprovedAt
	}
	if res.Failure != nil {
		body.Failure = &failureBody{Code: res.Failure.Code, Message: res.Failure.Message}
	}
	writeJSON(w, http.StatusOK, body)
}

func (s *Server) getPayment(w http.ResponseWriter, r *http.Request) {
	p, err := s.queries.Payment(r.Context(), mux.Vars(r)["orderId"])
	if err != nil {
		writeError(w, r, s.logger, err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

func (s *Server) listPayments(w http.ResponseWriter, r *http.Request) {
	q := queries.ListQuery{Cursor: r.URL.Query().Get("cursor"), Status: r.URL.Query().Get("status")}
	if v := r.URL.Query().Get("needsReview"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			writeError(w, r, s.logger, badRequest("INVALID_REQUEST", "needsReview must be true or false, got %q", truncate(v, 20)))
			return
		}
		q.NeedsReview = b
	}
	if l := r.URL.Query().Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 {
			writeError(w, r, s.logger, badRequest("INVALID_REQUEST", "limit must be a positive integer, got %q", truncate(l, 20)))
			return
		}
		q.Limit = n
	}
	page, err := s.queries.ListPayments(r.Context(), q)
	if err != nil {
		writeError(w, r, s.logger, err)
		return
	}
	writeJSON(w, http.StatusOK, page)
}
