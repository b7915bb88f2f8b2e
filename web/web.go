// Package web is the back office: server-rendered HTML pages in which a merchant's staff find
// where a customer's money is (payments and their histories, refunds, sellers' wallets, the
// trial balance, reconciliation, the needs-review queue, a daily chart). It holds no business
// rules: each page calls the same query and command services as the JSON API, for the signed-in
// merchant only, and shows what they answer.
//
// Sign-in takes a merchant's API key, checked by merchants.Authenticate; the page then works
// with the key's scopes (payments:read for payments, ledger:read for the ledger pages,
// refunds:write for the refund form). The key is not kept: a session is a random 256-bit token
// in an HttpOnly, SameSite=Strict cookie, stored server-side in PostgreSQL (web_sessions) as its
// SHA-256 only, with the merchant, the key id and the scopes; it ends after IdleTimeout without
// a request or MaxAge after sign-in. Every request re-checks the key by its id
// (merchants.CheckKey), so revoking a key ends its sessions within the merchants cache TTL.
//
// Every POST is checked twice against cross-site requests: its Origin (or, without one, its
// Referer) must be this server, and its form must carry the session's CSRF token (an HMAC of
// the session token, so nothing more is stored), compared in constant time. The sign-in form,
// which has no session yet, carries a random token that must equal its own cookie's. A POST that
// fails either check is 403 and changes nothing.
//
// Pages are html/template (escaped by context), the JavaScript is small and optional (the pages
// work without it), and every asset is embedded: there is no build step. Amounts are shown as
// people read them (25,000원), times in KST. Every page answers with a Server-Timing header
// giving the server's time.
package web

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/gorilla/mux"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/paymentledger/ledger/commands"
	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/httpapi"
	"github.com/paymentledger/ledger/internal/logging"
	"github.com/paymentledger/ledger/internal/ratelimit"
	"github.com/paymentledger/ledger/merchants"
	"github.com/paymentledger/ledger/queries"
)

// Keys checks API keys at sign-in and, by id, on every later request. *merchants.Service is the
// implementation: a refusal is a *merchants.AuthError; any other error means it could not tell.
type Keys interface {
	Authenticate(ctx context.Context, apiKey string) (merchants.Principal, error)
	CheckKey(ctx context.Context, merchant domain.MerchantID, kid domain.APIKeyID) (merchants.Principal, error)
}

// Payments is the payments read side the pages need; every method answers for one merchant.
type Payments interface {
	Payment(ctx context.Context, merchant domain.MerchantID, orderID string) (queries.Payment, error)
	ListPayments(ctx context.Context, merchant domain.MerchantID, q queries.ListQuery) (queries.Page, error)
	ReconciliationRuns(ctx context.Context, merchant domain.MerchantID, q queries.RunsQuery) (queries.RunsPage, error)
	OpenDifferences(ctx context.Context, merchant domain.MerchantID) ([]queries.OrderDifference, bool, error)
}

// Ledger is the ledger read side the pages need; every method reads one merchant's books.
type Ledger interface {
	TrialBalance(ctx context.Context, merchant domain.MerchantID, asOf time.Time, currency string) (queries.TrialBalance, error)
	Wallet(ctx context.Context, merchant domain.MerchantID, seller domain.SellerID, asOf time.Time, currency string) (queries.Wallet, error)
	WalletMovements(ctx context.Context, merchant domain.MerchantID, seller domain.SellerID, asOf time.Time, currency string, q queries.MovementsQuery) (queries.MovementsPage, error)
}

// Refunds makes refunds: the command the API's cancel route calls.
type Refunds interface {
	Cancel(ctx context.Context, in commands.CancelInput) (commands.CancelResult, error)
}

var (
	_ Keys     = (*merchants.Service)(nil)
	_ Payments = (*queries.Service)(nil)
	_ Ledger   = (*queries.Ledger)(nil)
	_ Refunds  = (*commands.Service)(nil)
	_ Reports  = (*queries.Service)(nil)
)

// Config holds the back office's services and settings.
type Config struct {
	Keys     Keys          // required
	Payments Payments      // required
	Ledger   Ledger        // required
	Refunds  Refunds       // required
	Reports  Reports       // required: the daily chart
	Exporter Exporter      // required: the CSV export
	Pool     *pgxpool.Pool // required: the sessions (web_sessions)
	Logger   *slog.Logger

	// IdleTimeout ends a session after this long without a request (default 8 h); MaxAge ends it
	// this long after sign-in whatever happens (default 24 h).
	IdleTimeout, MaxAge time.Duration
	// TrustForwardedProto takes X-Forwarded-Proto: https as a request over TLS (cookies get
	// Secure, origins are https): set it only behind a proxy that sets that header itself.
	TrustForwardedProto bool
	// FailuresPerMinute is how many failed sign-ins one client address may make per minute
	// (with as many in a burst) before it must wait (default 10).
	FailuresPerMinute int
	// Now is the clock of sessions and limits. Default time.Now.
	Now func() time.Time
}

// Handler serves the back office.
type Handler struct {
	cfg       Config
	logger    *slog.Logger
	router    *mux.Router
	pages     map[string]*pageTemplate
	sessions  *sessionStore
	failures  *ratelimit.Keyed
	staticSrv http.Handler
}

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed static
var staticFiles embed.FS

// New returns the back office's handler, to be mounted at "/". A Config without one of its
// required services is a wiring mistake: New panics naming it.
func New(cfg Config) *Handler {
	var missing []error
	for name, ok := range map[string]bool{"Keys": cfg.Keys != nil, "Payments": cfg.Payments != nil,
		"Ledger": cfg.Ledger != nil, "Refunds": cfg.Refunds != nil, "Reports": cfg.Reports != nil, "Exporter": cfg.Exporter != nil, "Pool": cfg.Pool != nil} {
		if !ok {
			missing = append(missing, fmt.Errorf("web: Config.%s is required", name))
		}
	}
	if err := errors.Join(missing...); err != nil {
		panic(err)
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 8 * time.Hour
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = 24 * time.Hour
	}
	if cfg.FailuresPerMinute <= 0 {
		cfg.FailuresPerMinute = 10
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	static, err := fs.Sub(staticFiles, "static")
	if err != nil {
		panic(err) // the embed pattern guarantees the directory
	}
	h := &Handler{
		cfg: cfg, logger: logger, router: mux.NewRouter(), pages: parsePages(),
		sessions:  &sessionStore{pool: cfg.Pool, idle: cfg.IdleTimeout, maxAge: cfg.MaxAge},
		failures:  ratelimit.New(float64(cfg.FailuresPerMinute)/60, cfg.FailuresPerMinute, 0),
		staticSrv: http.FileServerFS(static),
	}
	h.routes()
	return h
}

func (h *Handler) routes() {
	r := h.router
	r.PathPrefix("/static/").Handler(http.StripPrefix("/static/", h.static())).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/signin", h.signInForm).Methods(http.MethodGet)
	r.HandleFunc("/signin", h.signIn).Methods(http.MethodPost)
	r.Handle("/signout", h.signedIn("", h.signOut)).Methods(http.MethodPost)
	r.Handle("/", h.signedIn("", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/payments", http.StatusSeeOther)
	})).Methods(http.MethodGet)
	r.Handle("/payments", h.signedIn(domain.ScopePaymentsRead, h.paymentsPage)).Methods(http.MethodGet)
	r.Handle("/payments/export.csv", h.signedIn(domain.ScopePaymentsRead, h.exportPage)).Methods(http.MethodGet)
	r.Handle("/payments/{orderId}", h.signedIn(domain.ScopePaymentsRead, h.paymentPage)).Methods(http.MethodGet)
	r.Handle("/payments/{orderId}/refund", h.signedIn(domain.ScopeRefundsWrite, h.refund)).Methods(http.MethodPost)
	r.Handle("/review", h.signedIn(domain.ScopePaymentsRead, h.reviewPage)).Methods(http.MethodGet)
	r.Handle("/reports/daily", h.signedIn(domain.ScopePaymentsRead, h.dailyPage)).Methods(http.MethodGet)
	r.Handle("/wallets", h.signedIn(domain.ScopeLedgerRead, h.walletPage)).Methods(http.MethodGet)
	r.Handle("/ledger", h.signedIn(domain.ScopeLedgerRead, h.trialBalancePage)).Methods(http.MethodGet)
	r.Handle("/reconciliation", h.signedIn(domain.ScopeLedgerRead, h.reconciliationPage)).Methods(http.MethodGet)
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.renderError(w, r, http.StatusNotFound, "Not found", "There is no page at this address.")
	})
	r.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.renderError(w, r, http.StatusMethodNotAllowed, "Method not allowed", r.Method+" is not allowed here.")
	})
}

func (h *Handler) static() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Assets change only with a new build; an hour keeps pages fast without stale releases.
		w.Header().Set("Cache-Control", "public, max-age=3600")
		h.staticSrv.ServeHTTP(w, r)
	})
}

type startKey struct{}

// ServeHTTP implements http.Handler: security headers, panic recovery and an access log.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := logging.NewStatusRecorder(w)
	r = r.WithContext(context.WithValue(r.Context(), startKey{}, start))
	hd := w.Header()
	hd.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "+
		"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	// Same-origin requests carry their Referer (the POST check's fallback); others get nothing.
	hd.Set("Referrer-Policy", "same-origin")
	defer func() {
		if p := recover(); p != nil {
			h.logger.ErrorContext(r.Context(), "web: panic", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			if !rec.Wrote {
				h.renderError(rec, r, http.StatusInternalServerError, "Something went wrong", "The error has been logged.")
			}
		}
		h.logger.InfoContext(r.Context(), "web", "method", r.Method, "path", clip(r.URL.Path, 200), "status", rec.Status,
			"ms", time.Since(start).Milliseconds())
	}()
	if err := httpapi.CheckRequestText(r); err != nil {
		h.renderError(rec, r, http.StatusBadRequest, "Bad address", "The address holds characters no page takes (control characters or invalid UTF-8).")
		return
	}
	h.router.ServeHTTP(rec, r)
}

// serverTiming sets the Server-Timing header to the time since the request came in.
func serverTiming(w http.ResponseWriter, r *http.Request) {
	if start, ok := r.Context().Value(startKey{}).(time.Time); ok {
		w.Header().Set("Server-Timing", fmt.Sprintf("app;dur=%.1f", float64(time.Since(start).Microseconds())/1000))
	}
}

// failed answers err as an error page: a domain error's message for people, anything else
// logged and answered with a generic message.
func (h *Handler) failed(w http.ResponseWriter, r *http.Request, err error) {
	var de *domain.Error
	if errors.As(err, &de) && de.Kind != domain.KindInternal {
		title := map[domain.Kind]string{domain.KindInvalid: "Invalid request", domain.KindNotFound: "Not found",
			domain.KindConflict: "Conflict", domain.KindUnavailable: "Unavailable"}[de.Kind]
		h.renderError(w, r, httpapi.StatusOf(de.Kind), title, de.Message)
		return
	}
	h.logger.ErrorContext(r.Context(), "web: internal error", "method", r.Method, "path", clip(r.URL.Path, 200), "error", err)
	h.renderError(w, r, http.StatusInternalServerError, "Something went wrong", "The error has been logged; try again.")
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
