package shop

import (
	"bytes"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/shopspring/decimal"

	"github.com/paymentledger/ledger/domain"
)

var pages = template.Must(template.New("pages").Funcs(template.FuncMap{"won": formatWon}).ParseFS(files, "templates/*.html"))

// kst is Korea Standard Time, in which every time on the shop's pages is shown.
var kst = time.FixedZone("KST", 9*60*60)

const (
	pagePolicy = "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " +
		"base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
	maxFailMessageLen = 300
	// successPath and failPath are the shop's successUrl and failUrl.
	successPath = "/shop/success"
	failPath    = "/shop/fail"
)

var failCodePattern = regexp.MustCompile(`^[A-Z0-9_]{1,100}$`)

// page is what every template gets: its own data plus the settings its script reads.
type page struct {
	Title     string
	WindowURL string
	Data      any
}

func (h *Handler) render(w http.ResponseWriter, r *http.Request, status int, name string, p page) {
	p.WindowURL = h.cfg.WindowURL
	var buf bytes.Buffer
	if err := pages.ExecuteTemplate(&buf, name, p); err != nil {
		h.log.ErrorContext(r.Context(), "shop: render", "page", name, "error", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Cache-Control", "no-store")
	hd.Set("Content-Security-Policy", pagePolicy)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "same-origin")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

type problemPage struct {
	Heading string
	Message string
}

func (h *Handler) problem(w http.ResponseWriter, r *http.Request, status int, heading, message string) {
	h.render(w, r, status, "problem", page{Title: heading, Data: problemPage{heading, message}})
}

func (h *Handler) notFound(w http.ResponseWriter, r *http.Request) {
	h.problem(w, r, http.StatusNotFound, "Page not found", "There is nothing at this address.")
}

// productsPage is GET /shop/.
func (h *Handler) productsPage(w http.ResponseWriter, r *http.Request) {
	h.render(w, r, http.StatusOK, "products", page{Title: "Tea things", Data: catalogue})
}

// formCheckout is POST /shop/checkout, the product page's Buy button: the checkout, then the
// paying page. It works without script.
func (h *Handler) formCheckout(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxJSONBody)
	if err := r.ParseForm(); err != nil {
		h.problem(w, r, http.StatusBadRequest, "That did not work", "The form could not be read.")
		return
	}
	p, ok := findProduct(r.PostForm.Get("product"))
	if !ok {
		h.problem(w, r, http.StatusBadRequest, "That did not work", "There is no such product.")
		return
	}
	co, err := h.checkout(r, p)
	if err != nil {
		status, f := buyerFacing(err)
		if status >= 500 {
			h.log.ErrorContext(r.Context(), "shop: ledger call failed", "op", "checkout", "error", err)
		}
		h.problem(w, r, status, "The order could not be placed", f.Message)
		return
	}
	http.Redirect(w, r, "/shop/pay/"+url.PathEscape(co.OrderID), http.StatusSeeOther)
}

type payView struct {
	Order     paymentAnswer
	CreatedAt string
	ExpiresAt string
	PhoneURL  string // the window's absolute address, for the QR code and the link under it
	QR        template.HTML
}

// payPage is GET /shop/pay/{orderId}: the order, the button that opens the payment window
// here, and a QR code of the window for paying on a phone. The status shown follows the
// ledger live, so a payment made on the phone shows here too.
func (h *Handler) payPage(w http.ResponseWriter, r *http.Request) {
	orderID := r.PathValue("orderId")
	if !orderIDPattern.MatchString(orderID) {
		h.notFound(w, r)
		return
	}
	pay, err := h.ledger.payment(r.Context(), orderID)
	if err != nil {
		var le *ledgerError
		if errors.As(err, &le) && le.Status == http.StatusNotFound {
			h.notFound(w, r)
			return
		}
		status, f := buyerFacing(err)
		h.log.ErrorContext(r.Context(), "shop: ledger call failed", "op", "payment", "error", err)
		h.problem(w, r, status, "The order cannot be shown", f.Message)
		return
	}
	base := h.publicBase(r)
	phone := h.windowURL(base, pay, base+successPath, base+failPath)
	qr, err := qrSVG(phone, "QR code: scan it with your phone to open the payment window there")
	if err != nil {
		h.log.ErrorContext(r.Context(), "shop: QR code", "error", err)
	}
	h.render(w, r, http.StatusOK, "pay", page{Title: "Pay for " + pay.OrderName, Data: payView{
		Order: pay, CreatedAt: kstTime(pay.CreatedAt), ExpiresAt: kstTime(pay.ExpiresAt), PhoneURL: phone, QR: qr,
	}})
}

// windowURL is the payment window's absolute address for pay, as the SDK's requestPayment
// builds it.
func (h *Handler) windowURL(base string, pay paymentAnswer, successURL, failURL string) string {
	win := h.cfg.WindowURL
	if strings.HasPrefix(win, "/") {
		win = base + win
	}
	q := url.Values{"orderId": {pay.OrderID}, "amount": {pay.Amount}, "orderName": {pay.OrderName},
		"successUrl": {successURL}, "failUrl": {failURL}}
	return win + "?" + q.Encode()
}

// publicBase is the shop's origin as buyers reach it: Config.PublicURL, else the request's.
func (h *Handler) publicBase(r *http.Request) string {
	if h.cfg.PublicURL != "" {
		return h.cfg.PublicURL
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

type successView struct {
	OrderID    string
	PaymentKey string
	Amount     string
}

// successPage is GET /shop/success, the successUrl: its script confirms through
// POST /shop/api/confirm and shows the status live from /shop/api/orders/{orderId}/events.
func (h *Handler) successPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	v := successView{OrderID: q.Get("orderId"), PaymentKey: q.Get("paymentKey"), Amount: q.Get("amount")}
	if !orderIDPattern.MatchString(v.OrderID) || !amountPattern.MatchString(v.Amount) ||
		v.PaymentKey == "" || utf8.RuneCountInString(v.PaymentKey) > maxPaymentKeyLen || !printable(v.PaymentKey) {
		h.problem(w, r, http.StatusBadRequest, "This payment cannot be confirmed",
			"The address lacks the paymentKey, orderId or amount the payment window sends.")
		return
	}
	h.render(w, r, http.StatusOK, "success", page{Title: "Payment", Data: v})
}

type failView struct {
	Code    string
	Message string
	OrderID string
}

// failPage is GET /shop/fail?code&message[&orderId], the failUrl.
func (h *Handler) failPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	v := failView{Code: q.Get("code"), Message: q.Get("message"), OrderID: q.Get("orderId")}
	if !failCodePattern.MatchString(v.Code) {
		v.Code = "UNKNOWN"
	}
	if !utf8.ValidString(v.Message) || !printable(v.Message) {
		v.Message = ""
	}
	if utf8.RuneCountInString(v.Message) > maxFailMessageLen {
		v.Message = string([]rune(v.Message)[:maxFailMessageLen]) + "…"
	}
	if !orderIDPattern.MatchString(v.OrderID) {
		v.OrderID = ""
	}
	h.render(w, r, http.StatusOK, "fail", page{Title: "Payment not made", Data: v})
}

func printable(s string) bool { return strings.IndexFunc(s, unicode.IsControl) < 0 }

func kstTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.In(kst).Format("2006-01-02 15:04:05") + " KST"
}

// formatWon writes an amount in won as people read it, "25000" → "25,000원"
// (domain.FormatWon); text that is not an amount comes back unchanged with "원" appended.
func formatWon(amount string) string {
	d, err := decimal.NewFromString(amount)
	if err != nil {
		return amount + "원"
	}
	return domain.FormatWon(d)
}
