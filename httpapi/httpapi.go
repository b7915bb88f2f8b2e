// Package httpapi is the HTTP adapter: routes and who may call each (an API key with the route's
// scope, the admin token, or anyone), rate limits, input checks, JSON decoding and encoding, and
// the one table that maps domain error kinds to status codes. It holds no business rules:
// handlers decode, call commands or queries for the request's merchant, and encode.
//
// Authentication: a merchant's API key as the user name of HTTP Basic (as Toss takes its own
// keys) or as a Bearer token. Failed authentications are limited per client address and requests
// per key; both answer 429 with Retry-After. The client address is the TCP peer's: forwarding
// headers are not trusted.
package httpapi

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"sync"
	"time"

	"github.com/gorilla/mux"

	"github.com/paymentledger/ledger/commands"
	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/internal/logging"
	"github.com/paymentledger/ledger/queries"
)

// Commands is the command side the API needs.
type Commands interface {
	Checkout(ctx context.Context, in commands.CheckoutInput) (commands.CheckoutResult, error)
	Confirm(ctx context.Context, in commands.ConfirmInput) (commands.ConfirmResult, error)
	Cancel(ctx context.Context, in commands.CancelInput) (commands.CancelResult, error)
}

// Queries is the read side the API needs. Every method answers for one merchant only.
type Queries interface {
	Payment(ctx context.Context, merchant domain.MerchantID, orderID string) (queries.Payment, error)
	ListPayments(ctx context.Context, merchant domain.MerchantID, q queries.ListQuery) (queries.Page, error)
	ReconciliationRuns(ctx context.Context, merchant domain.MerchantID, q queries.RunsQuery) (queries.RunsPage, error)
	DailyReport(ctx context.Context, merchant domain.MerchantID, from, to time.Time) ([]queries.DailyRow, error)
	EachPayment(ctx context.Context, merchant domain.MerchantID, q queries.ListQuery, fn func(queries.Payment) error) error
}

var (
	_ Commands = (*commands.Service)(nil)
	_ Queries  = (*queries.Service)(nil)
)

// Access says who may call a route.
type Access string

const (
	AccessPublic Access = "public"  // anyone (health checks, Toss's webhooks, the simulator)
	AccessAPIKey Access = "api-key" // a merchant's API key with the route's scope
	AccessAdmin  Access = "admin"   // the operator's ADMIN_TOKEN
)

// Route is one registered route: the table the authorization tests walk, so that a route added
// without saying who may call it cannot go unnoticed.
type Route struct {
	Method string
	Path   string // the mux template, e.g. /api/v1/payments/{orderId}
	Access Access
	Scope  domain.Scope // for AccessAPIKey
}

// Server serves the command, query and admin APIs.
type Server struct {
	commands    Commands
	queries     Queries
	ledger      LedgerQueries // optional: set by WithLedger
	live        LiveSource    // optional: set by WithLive
	liveCfg     LiveConfig
	streams     *streamCounts
	liveEnd     chan struct{} // closed by EndLiveStreams
	liveEndOnce sync.Once
	ready       func(context.Context) error
	logger      *slog.Logger
	router      *mux.Router
	auth        authConfig
	routes      []Route
}

// New builds the router. ready reports whether the service can take traffic (/readyz). Every
// /api/v1 route needs an API key checked by auth (see AuthConfig). Extra handlers (Toss's
// webhooks, an in-process simulator) can be mounted with Handle.
func New(c Commands, q Queries, ready func(context.Context) error, logger *slog.Logger, auth AuthConfig) *Server {
	s := &Server{commands: c, queries: q, ready: ready, logger: logger, router: mux.NewRouter(), auth: newAuthConfig(auth)}
	s.public(http.MethodGet, "/healthz", s.healthz)
	s.public(http.MethodGet, "/readyz", s.readyz)
	s.api(http.MethodPost, "/api/v1/payments/checkout", domain.ScopePaymentsWrite, s.checkout)
	s.api(http.MethodPost, "/api/v1/payments/confirm", domain.ScopePaymentsWrite, s.confirm)
	s.api(http.MethodPost, "/api/v1/payments/{orderId}/cancel", domain.ScopeRefundsWrite, s.cancel)
	s.api(http.MethodGet, "/api/v1/payments", domain.ScopePaymentsRead, s.listPayments)
	s.api(http.MethodGet, "/api/v1/payments/{orderId}", domain.ScopePaymentsRead, s.getPayment)
	// Scopes are per area, not per resource: the daily report is the payments list summed.
	s.api(http.MethodGet, "/api/v1/reports/daily", domain.ScopePaymentsRead, s.dailyReport)
	// Reconciliation's summaries describe the merchant's books against Toss's: ledger:read.
	s.api(http.MethodGet, "/api/v1/reconciliation/runs", domain.ScopeLedgerRead, s.reconciliationRuns)
	s.router.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, s.logger, &apiError{Status: http.StatusNotFound, Code: "NOT_FOUND", Message: "no route for " + r.Method + " " + truncate(r.URL.Path, 100)})
	})
	s.router.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, s.logger, &apiError{Status: http.StatusMethodNotAllowed, Code: "METHOD_NOT_ALLOWED", Message: r.Method + " is not allowed on " + truncate(r.URL.Path, 100)})
	})
	return s
}

// public registers a route anyone may call.
func (s *Server) public(method, path string, h http.HandlerFunc) {
	s.routes = append(s.routes, Route{Method: method, Path: path, Access: AccessPublic})
	s.router.HandleFunc(path, h).Methods(method)
}

// api registers a route that needs an API key with scope; the handler runs with the key's
// Principal in its context.
func (s *Server) api(method, path string, scope domain.Scope, h http.HandlerFunc) {
	s.routes = append(s.routes, Route{Method: method, Path: path, Access: AccessAPIKey, Scope: scope})
	s.router.Handle(path, s.requireKey(scope, h)).Methods(method)
}

// adminRoute registers a route that needs the admin token.
func (s *Server) adminRoute(method, path string, h http.HandlerFunc) {
	s.routes = append(s.routes, Route{Method: method, Path: path, Access: AccessAdmin})
	s.router.Handle(path, s.requireAdmin(h)).Methods(method)
}

// Routes lists every route registered so far (mounts made with Handle are not routes).
func (s *Server) Routes() []Route { return append([]Route(nil), s.routes...) }

// Instrument wraps every route's handler, and the answers to unmatched paths and methods, in mw
// (metrics). It runs after a route matched, so mux.CurrentRoute works in it.
func (s *Server) Instrument(mw mux.MiddlewareFunc) {
	s.router.Use(mw)
	s.router.NotFoundHandler = mw(s.router.NotFoundHandler)
	s.router.MethodNotAllowedHandler = mw(s.router.MethodNotAllowedHandler)
}

// Handle mounts h under the path prefix, outside the API's authentication (h authenticates on
// its own terms: Toss's webhooks, the in-process simulator).
func (s *Server) Handle(prefix string, h http.Handler) {
	s.router.PathPrefix(prefix).Handler(http.StripPrefix(prefix, h))
}

// ServeHTTP implements http.Handler: input guards, panic recovery and an access log.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := logging.NewStatusRecorder(w)
	fields := &logFields{}
	r = r.WithContext(context.WithValue(r.Context(), logFieldsKey{}, fields))
	defer func() {
		p := recover()
		aborted := p == http.ErrAbortHandler
		if p != nil && !aborted {
			s.logger.ErrorContext(r.Context(), "panic", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			if !rec.Wrote {
				writeError(rec, r, s.logger, &apiError{Status: http.StatusInternalServerError, Code: "INTERNAL", Message: "internal error; it has been logged"})
			}
		}
		attrs := append([]any{"method", r.Method, "path", truncate(r.URL.Path, 200),
			"status", rec.Status, "ms", time.Since(start).Milliseconds()}, fields.attrs()...)
		if aborted {
			attrs = append(attrs, "aborted", true)
		}
		s.logger.InfoContext(r.Context(), "http", attrs...)
		if aborted {
			// A streamed answer that failed midway (an export): net/http cuts the connection,
			// so the client sees a broken transfer, not a complete-looking one. Logged first.
			panic(p)
		}
	}()
	if err := CheckRequestText(r); err != nil {
		writeError(rec, r, s.logger, err)
		return
	}
	s.router.ServeHTTP(rec, r)
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.ready(ctx); err != nil {
		// The error's text (addresses, the driver's words) is logged, never sent: /readyz is public.
		s.logger.WarnContext(r.Context(), "not ready", "error", err)
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "reason": "the database did not answer"})
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
		Merchant:       principalOf(r.Context()).Merchant,
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
	noteOrder(r, orderID)
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
	res, err := s.commands.Confirm(r.Context(), commands.ConfirmInput{Merchant: principalOf(r.Context()).Merchant, PaymentKey: key, OrderID: orderID, Amount: amt})
	if err != nil {
		writeError(w, r, s.logger, err)
		return
	}
	body := confirmResponse{OrderID: string(res.OrderID), PaymentKey: string(res.PaymentKey), Status: string(res.Status)}
	if !res.ApprovedAt.IsZero() {
		at := res.ApprovedAt.In(domain.KST)
		body.ApprovedAt = &at
	}
	if res.Failure != nil {
		body.Failure = &failureBody{Code: res.Failure.Code, Message: res.Failure.Message}
	}
	writeJSON(w, http.StatusOK, body)
}

func (s *Server) getPayment(w http.ResponseWriter, r *http.Request) {
	id := mux.Vars(r)["orderId"]
	noteOrder(r, domain.OrderID(id))
	p, err := s.queries.Payment(r.Context(), principalOf(r.Context()).Merchant, id)
	if err != nil {
		writeError(w, r, s.logger, err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

// reconciliationRuns is GET /api/v1/reconciliation/runs?limit=&cursor=: the caller's merchant's
// reconciliation runs, newest first.
func (s *Server) reconciliationRuns(w http.ResponseWriter, r *http.Request) {
	cursor, limit, err := pageParams(r.URL.Query())
	if err != nil {
		writeError(w, r, s.logger, err)
		return
	}
	q := queries.RunsQuery{Cursor: cursor, Limit: limit}
	page, err := s.queries.ReconciliationRuns(r.Context(), principalOf(r.Context()).Merchant, q)
	if err != nil {
		writeError(w, r, s.logger, err)
		return
	}
	writeJSON(w, http.StatusOK, page)
}

func (s *Server) listPayments(w http.ResponseWriter, r *http.Request) {
	params := r.URL.Query()
	cursor, limit, err := pageParams(params)
	if err != nil {
		writeError(w, r, s.logger, err)
		return
	}
	q, err := queries.ParseListQuery(params)
	if err != nil {
		writeError(w, r, s.logger, err)
		return
	}
	q.Cursor, q.Limit = cursor, limit
	asCSV, err := wantsCSV(r)
	if err != nil {
		writeError(w, r, s.logger, err)
		return
	}
	if asCSV {
		s.exportPayments(w, r, q) // every matching payment: limit does not apply
		return
	}
	page, err := s.queries.ListPayments(r.Context(), principalOf(r.Context()).Merchant, q)
	if err != nil {
		writeError(w, r, s.logger, err)
		return
	}
	writeJSON(w, http.StatusOK, page)
}

type dailyReportResponse struct {
	Days   []queries.DailyRow  `json:"days"`
	Totals queries.DailyTotals `json:"totals"`
}

// dailyReport is GET /api/v1/reports/daily?from=2026-11-01&to=2026-11-30: one row per KST day,
// both days included, at most queries.MaxReportDays.
func (s *Server) dailyReport(w http.ResponseWriter, r *http.Request) {
	params := r.URL.Query()
	from, errFrom := queries.ParseKSTDate("from", params.Get("from"))
	to, errTo := queries.ParseKSTDate("to", params.Get("to"))
	if err := domain.InvalidInputs(errFrom, errTo); err != nil {
		writeError(w, r, s.logger, err)
		return
	}
	days, err := s.queries.DailyReport(r.Context(), principalOf(r.Context()).Merchant, from, to)
	if err != nil {
		writeError(w, r, s.logger, err)
		return
	}
	writeJSON(w, http.StatusOK, dailyReportResponse{Days: days, Totals: queries.ReportTotals(days)})
}
