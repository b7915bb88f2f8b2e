package shop

import (
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Config configures the demo shop.
type Config struct {
	// APIKey is the demo merchant's API key (scope payments:write and payments:read). It is
	// sent to the ledger only, never to a browser. Required.
	APIKey string
	// LedgerURL is the ledger API's base URL as this process reaches it, such as
	// "http://127.0.0.1:8080" for the paymentd that serves the shop. Required.
	LedgerURL string
	// WindowURL is the payment window as buyers' browsers reach it: a path on the shop's own
	// host ("/tosssim/sim/v1/window", the default, for paymentd's in-process simulator) or an
	// absolute http(s) URL.
	WindowURL string
	// PublicURL is the shop's origin as buyers reach it, such as "http://192.168.0.10:8080";
	// it makes the absolute addresses of the QR code, which a phone opens. Default: the
	// scheme and Host of each request, which only works for a browser on the same machine
	// when the shop runs on localhost.
	PublicURL string
	// Client sends the ledger requests. Default: a client of its own with no overall timeout
	// (a status stream lasts as long as the buyer watches); Timeout bounds the other calls.
	Client *http.Client
	// Timeout bounds one ledger call other than a status stream. Default 60 s: a confirm
	// waits for Toss, with retries.
	Timeout time.Duration
	// Logger receives the ledger failures that buyers only see as "the shop cannot take
	// payments right now". Default: discard.
	Logger *slog.Logger
}

const (
	defaultWindowURL = "/tosssim/sim/v1/window"
	defaultTimeout   = 60 * time.Second
	maxJSONBody      = 4 << 10
	// buyerID is the one buyer of the demo: the shop has no accounts.
	buyerID = "demo-buyer"
)

// Handler is the demo shop and the browser SDK. It serves full paths, /shop/… and /sdk/…:
// mount it at both on a mux that keeps the path (http.ServeMux), or use Mount with one that
// strips its prefix (httpapi.Server.Handle).
type Handler struct {
	cfg    Config
	ledger *ledgerClient
	log    *slog.Logger
	mux    http.Handler
}

//go:embed assets templates
var files embed.FS

// New checks cfg and builds the shop.
func New(cfg Config) (*Handler, error) {
	var problems []error
	if strings.TrimSpace(cfg.APIKey) == "" {
		problems = append(problems, errors.New("shop: APIKey is required"))
	}
	base, err := url.Parse(cfg.LedgerURL)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		problems = append(problems, fmt.Errorf("shop: LedgerURL %q is not an absolute http(s) URL", cfg.LedgerURL))
	}
	if cfg.WindowURL == "" {
		cfg.WindowURL = defaultWindowURL
	}
	if w, err := url.Parse(cfg.WindowURL); err != nil || !(strings.HasPrefix(cfg.WindowURL, "/") && !strings.HasPrefix(cfg.WindowURL, "//") ||
		(w.Scheme == "http" || w.Scheme == "https") && w.Host != "") || w.RawQuery != "" {
		problems = append(problems, fmt.Errorf("shop: WindowURL %q is neither a path nor an absolute http(s) URL without a query", cfg.WindowURL))
	}
	if cfg.PublicURL != "" {
		p, err := url.Parse(cfg.PublicURL)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" || (p.Path != "" && p.Path != "/") {
			problems = append(problems, fmt.Errorf("shop: PublicURL %q is not an http(s) origin", cfg.PublicURL))
		}
		cfg.PublicURL = strings.TrimSuffix(cfg.PublicURL, "/")
	}
	if err := errors.Join(problems...); err != nil {
		return nil, err
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{}
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = defaultTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	h := &Handler{
		cfg:    cfg,
		ledger: &ledgerClient{base: strings.TrimSuffix(cfg.LedgerURL, "/"), apiKey: cfg.APIKey, http: cfg.Client, timeout: cfg.Timeout},
		log:    cfg.Logger,
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /shop/{$}", h.productsPage)
	mux.HandleFunc("POST /shop/checkout", h.formCheckout)
	mux.HandleFunc("GET /shop/pay/{orderId}", h.payPage)
	mux.HandleFunc("GET /shop/success", h.successPage)
	mux.HandleFunc("GET /shop/fail", h.failPage)
	mux.HandleFunc("GET /shop/assets/shop.js", asset("assets/shop.js", "text/javascript; charset=utf-8"))
	mux.HandleFunc("POST /shop/api/checkout", h.apiCheckout)
	mux.HandleFunc("POST /shop/api/confirm", h.apiConfirm)
	mux.HandleFunc("GET /shop/api/orders/{orderId}/events", h.apiEvents)
	mux.HandleFunc("GET /sdk/v1/pay.js", asset("assets/pay.js", "text/javascript; charset=utf-8"))
	mux.HandleFunc("GET /sdk/v1/example.html", asset("assets/example.html", "text/html; charset=utf-8"))
	mux.HandleFunc("/", h.notFound)
	// Cross-site form posts and fetches (Sec-Fetch-Site, Origin) are refused: a page elsewhere
	// must not start checkouts or confirms in the buyer's browser.
	h.mux = http.NewCrossOriginProtection().Handler(mux)
	return h, nil
}

// ServeHTTP serves /shop/… and /sdk/….
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// Mount registers the shop at /shop and /sdk with handle, a function that strips the prefix
// it is given (httpapi.Server.Handle); the prefix is put back before the shop routes.
func (h *Handler) Mount(handle func(prefix string, h http.Handler)) {
	for _, prefix := range []string{"/shop", "/sdk"} {
		handle(prefix, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			r2 := r.Clone(r.Context())
			r2.URL.Path = prefix + r.URL.Path
			r2.URL.RawPath = ""
			h.ServeHTTP(w, r2)
		}))
	}
}

// product is one thing the demo shop sells; its lines are the checkout's, one per seller.
type product struct {
	ID          string
	Name        string
	Description string
	Lines       []checkoutLine
}

// Price is the sum of the lines, in whole won.
func (p product) Price() string {
	var total int64
	for _, l := range p.Lines {
		n, _ := strconv.ParseInt(l.Amount, 10, 64)
		total += n
	}
	return strconv.FormatInt(total, 10)
}

var catalogue = []product{
	{ID: "celadon-cup", Name: "Celadon tea cup", Description: "Hand-thrown in Icheon, glazed in pale jade.",
		Lines: []checkoutLine{{SellerID: "seller-kiln", ProductID: "celadon-cup", Amount: "25000"}}},
	{ID: "linen-towel", Name: "Linen tea towel", Description: "Washed linen, 50 × 70 cm.",
		Lines: []checkoutLine{{SellerID: "seller-linen", ProductID: "linen-towel", Amount: "12000"}}},
	{ID: "tea-set", Name: "Tea set: the cup and the towel", Description: "Both, from their two makers, in one payment.",
		Lines: []checkoutLine{
			{SellerID: "seller-kiln", ProductID: "celadon-cup", Amount: "25000"},
			{SellerID: "seller-linen", ProductID: "linen-towel", Amount: "12000"},
		}},
}

func findProduct(id string) (product, bool) {
	for _, p := range catalogue {
		if p.ID == id {
			return p, true
		}
	}
	return product{}, false
}

// The ledger's orderIds are UUIDs; Toss's rule (6–64 of A-Za-z0-9-_) bounds what is accepted
// before anything is sent on.
var orderIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{6,64}$`)

var amountPattern = regexp.MustCompile(`^[1-9][0-9]{0,14}$`)

const maxPaymentKeyLen = 200

// apiCheckout is POST /shop/api/checkout {"productId"}: the merchant backend's checkout. The
// price comes from the catalogue, never from the browser.
func (h *Handler) apiCheckout(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ProductID string `json:"productId"`
	}
	if !readJSON(w, r, &req) {
		return
	}
	p, ok := findProduct(req.ProductID)
	if !ok {
		writeJSONError(w, http.StatusBadRequest, failure{"UNKNOWN_PRODUCT", "There is no such product."})
		return
	}
	co, err := h.checkout(r, p)
	if err != nil {
		h.ledgerFailed(w, r, "checkout", err)
		return
	}
	writeJSON(w, http.StatusCreated, struct {
		OrderID   string `json:"orderId"`
		OrderName string `json:"orderName"`
		Amount    string `json:"amount"`
		Currency  string `json:"currency"`
	}{co.OrderID, co.OrderName, co.Amount, co.Currency})
}

func (h *Handler) checkout(r *http.Request, p product) (checkoutAnswer, error) {
	return h.ledger.checkout(r.Context(), checkoutBody{OrderName: p.Name, BuyerID: buyerID, Lines: p.Lines})
}

// apiConfirm is POST /shop/api/confirm {"paymentKey","orderId","amount"}: the successUrl
// step. The ledger compares the amount with the order's own and refuses a difference
// (AMOUNT_MISMATCH), as Toss asks merchants to (toss-api.md §3).
func (h *Handler) apiConfirm(w http.ResponseWriter, r *http.Request) {
	var req confirmBody
	if !readJSON(w, r, &req) {
		return
	}
	if req.PaymentKey == "" || utf8.RuneCountInString(req.PaymentKey) > maxPaymentKeyLen ||
		!orderIDPattern.MatchString(req.OrderID) || !amountPattern.MatchString(req.Amount) {
		writeJSONError(w, http.StatusBadRequest, failure{"INVALID_REQUEST", "paymentKey, orderId and amount (whole won, as a string) are required."})
		return
	}
	res, err := h.ledger.confirm(r.Context(), req)
	if err != nil {
		h.ledgerFailed(w, r, "confirm", err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// ledgerFailed answers a failed ledger call as buyerFacing says and logs what the buyer
// does not see.
func (h *Handler) ledgerFailed(w http.ResponseWriter, r *http.Request, op string, err error) {
	status, f := buyerFacing(err)
	if status >= 500 {
		h.log.ErrorContext(r.Context(), "shop: ledger call failed", "op", op, "error", err)
	}
	writeJSONError(w, status, f)
}

// readJSON decodes a small JSON body with no unknown fields. Only application/json is taken,
// which a cross-site form cannot send.
func readJSON(w http.ResponseWriter, r *http.Request, dst any) bool {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "application/json" {
		writeJSONError(w, http.StatusUnsupportedMediaType, failure{"UNSUPPORTED_MEDIA_TYPE", "Send application/json."})
		return false
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxJSONBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		writeJSONError(w, http.StatusBadRequest, failure{"INVALID_JSON", "The body is not the JSON this route takes."})
		return false
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		writeJSONError(w, http.StatusBadRequest, failure{"INVALID_JSON", "The body holds more than one JSON value."})
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	raw, err := json.Marshal(v)
	if err != nil {
		status, raw = http.StatusInternalServerError, []byte(`{"error":{"code":"INTERNAL","message":"internal error"}}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(raw, '\n'))
}

func writeJSONError(w http.ResponseWriter, status int, f failure) {
	writeJSON(w, status, struct {
		Error failure `json:"error"`
	}{f})
}

// asset serves one embedded file.
func asset(name, contentType string) http.HandlerFunc {
	body, err := files.ReadFile(name)
	if err != nil {
		panic(err) // embedded at build time: a missing file is a build mistake
	}
	return func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", contentType)
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Content-Type-Options", "nosniff")
		if strings.HasPrefix(contentType, "text/html") {
			// The example keeps its script inline, so merchants read one file.
			h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'unsafe-inline'; base-uri 'none'; frame-ancestors 'none'")
		}
		_, _ = w.Write(body)
	}
}
