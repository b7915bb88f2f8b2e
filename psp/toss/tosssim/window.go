package tosssim

import (
	"bytes"
	_ "embed"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/shopspring/decimal"
)

// The payment window: GET /sim/v1/window shows the order and three buttons, POST
// /sim/v1/window does what the buyer chose and redirects the browser like Toss does (see the
// package doc, "Payment window").

const (
	maxRedirectURLBytes = 2048 // what browsers and proxies reliably carry in one URL
	maxOrderNameLen     = 100  // characters (Toss's orderName limit, §5)
	maxWindowFormBytes  = 16 << 10
)

// The failUrl codes the window sends (toss-api.md §8.5). The messages are the simulator's
// wording: toss-api.md quotes none for these browser-side codes.
const (
	codeCanceled        = "PAY_PROCESS_CANCELED"
	messageCanceled     = "사용자에 의해 결제가 취소되었습니다."
	codeCardRejected    = "REJECT_CARD_COMPANY"
	windowPaymentType   = "NORMAL"
	windowActionField   = "action"
	windowApprove       = "approve"
	windowDecline       = "decline"
	windowClose         = "close"
	windowContentPolicy = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' http: https:; " +
		"base-uri 'none'; frame-ancestors 'none'"
)

// windowAmountPattern is a whole, positive number of won with no sign, no leading zero and at
// most 15 digits (a KRW amount that a decimal string and a JSON number both hold exactly).
var windowAmountPattern = regexp.MustCompile(`^[1-9][0-9]{0,14}$`)

//go:embed window.html
var windowHTML string

var windowTemplates = template.Must(template.New("window").Parse(windowHTML))

// windowOrder is a payment window's validated parameters.
type windowOrder struct {
	OrderID    string
	Amount     string // canonical digits, as validated
	OrderName  string
	SuccessURL *url.URL
	FailURL    *url.URL
}

// parseWindowOrder validates the window's parameters from a query or a form. Every parameter
// is required exactly once; the problems come back in a fixed order, each a sentence for the
// 400 page.
func parseWindowOrder(v url.Values) (windowOrder, []string) {
	var problems []string
	get := func(name string) (string, bool) {
		vals := v[name]
		switch {
		case len(vals) == 0 || vals[0] == "":
			problems = append(problems, name+" is missing.")
			return "", false
		case len(vals) > 1:
			problems = append(problems, name+" is given more than once.")
			return "", false
		case !utf8.ValidString(vals[0]):
			problems = append(problems, name+" is not valid UTF-8.")
			return "", false
		}
		return vals[0], true
	}
	var o windowOrder
	if id, ok := get("orderId"); ok {
		if orderIDPattern.MatchString(id) {
			o.OrderID = id
		} else {
			problems = append(problems, "orderId must be 6 to 64 characters of A-Z, a-z, 0-9, '-' and '_'.")
		}
	}
	if a, ok := get("amount"); ok {
		if windowAmountPattern.MatchString(a) {
			o.Amount = a
		} else {
			problems = append(problems, "amount must be a positive whole number of won, digits only.")
		}
	}
	if name, ok := get("orderName"); ok {
		switch {
		case utf8.RuneCountInString(name) > maxOrderNameLen:
			problems = append(problems, "orderName must be at most 100 characters.")
		case strings.IndexFunc(name, unicode.IsControl) >= 0:
			problems = append(problems, "orderName must not hold control characters.")
		default:
			o.OrderName = name
		}
	}
	for _, f := range []struct {
		name string
		dst  **url.URL
	}{{"successUrl", &o.SuccessURL}, {"failUrl", &o.FailURL}} {
		raw, ok := get(f.name)
		if !ok {
			continue
		}
		u, problem := redirectTarget(raw)
		if problem != "" {
			problems = append(problems, f.name+" "+problem)
			continue
		}
		*f.dst = u
	}
	return o, problems
}

// redirectTarget accepts an absolute http or https URL with a host and no user information,
// at most maxRedirectURLBytes long. Anything else (javascript:, data:, a relative or
// scheme-relative reference) could run script or mislead the buyer once the window redirects.
// The problem, if any, is the end of a sentence that starts with the parameter's name.
func redirectTarget(raw string) (*url.URL, string) {
	if len(raw) > maxRedirectURLBytes {
		return nil, "must be at most 2048 bytes."
	}
	if strings.IndexFunc(raw, func(r rune) bool { return unicode.IsControl(r) || unicode.IsSpace(r) }) >= 0 {
		return nil, "must not hold spaces or control characters."
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, "is not a URL."
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" {
		return nil, "must be an absolute http or https URL."
	}
	if u.User != nil {
		return nil, "must not hold a user name or password."
	}
	return u, ""
}

// withParams returns u with params appended to its query; the merchant's own parameters are
// kept as they were, as Toss appends to the successUrl and failUrl it was given.
func withParams(u *url.URL, params url.Values) string {
	out := *u
	if out.RawQuery == "" {
		out.RawQuery = params.Encode()
	} else {
		out.RawQuery += "&" + params.Encode()
	}
	return out.String()
}

// windowPage is what window.html renders: the order (the "window" template) or a refusal
// (the "invalid" template).
type windowPage struct {
	Merchant  string
	Order     windowOrder
	AmountWon string
	Problems  []string
}

func (s *Simulator) renderWindow(w http.ResponseWriter, status int, name string, page windowPage) {
	var buf bytes.Buffer
	if err := windowTemplates.ExecuteTemplate(&buf, name, page); err != nil {
		s.log.Error("payment window: render", "error", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", windowContentPolicy)
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// handleWindow is GET /sim/v1/window?orderId&amount&orderName&successUrl&failUrl: the page
// that stands for Toss's payment window.
func (s *Simulator) handleWindow(w http.ResponseWriter, r *http.Request) {
	o, problems := parseWindowOrder(r.URL.Query())
	if len(problems) > 0 {
		s.renderWindow(w, http.StatusBadRequest, "invalid", windowPage{Merchant: s.cfg.MerchantName, Problems: problems})
		return
	}
	s.renderWindow(w, http.StatusOK, "window", windowPage{Merchant: s.cfg.MerchantName, Order: o, AmountWon: formatWon(o.Amount)})
}

// handleWindowAction is POST /sim/v1/window, the window's form: the buyer's choice in
// "action" and the order again in hidden fields, validated again (the form is the browser's
// to change). It answers 303 See Other to the successUrl or the failUrl.
func (s *Simulator) handleWindowAction(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxWindowFormBytes)
	if err := r.ParseForm(); err != nil {
		s.renderWindow(w, http.StatusBadRequest, "invalid", windowPage{Merchant: s.cfg.MerchantName, Problems: []string{"The form could not be read."}})
		return
	}
	o, problems := parseWindowOrder(r.PostForm)
	action := r.PostForm.Get(windowActionField)
	switch action {
	case windowApprove, windowDecline, windowClose:
	default:
		problems = append(problems, "action must be approve, decline or close.")
	}
	if len(problems) > 0 {
		s.renderWindow(w, http.StatusBadRequest, "invalid", windowPage{Merchant: s.cfg.MerchantName, Problems: problems})
		return
	}
	var target string
	switch action {
	case windowApprove:
		target = s.approveInWindow(o)
	case windowDecline:
		target = withParams(o.FailURL, url.Values{"code": {codeCardRejected}, "message": {apiError(codeCardRejected).Message}, "orderId": {o.OrderID}})
	case windowClose:
		// Toss sends no orderId when the buyer cancels (toss-api.md §3, §8.5).
		target = withParams(o.FailURL, url.Values{"code": {codeCanceled}, "message": {messageCanceled}})
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// approveInWindow opens the session, as POST /sim/v1/sessions does, and returns the successUrl
// with paymentType, orderId, paymentKey and amount; a refused session (an order already paid:
// DUPLICATED_ORDER_ID) goes to the failUrl with its code, message and orderId instead.
func (s *Simulator) approveInWindow(o windowOrder) string {
	key, err := s.CreateSessionWith(SessionRequest{OrderID: o.OrderID, Amount: decimal.RequireFromString(o.Amount), OrderName: o.OrderName})
	if err != nil {
		var e *Error
		if !errors.As(err, &e) {
			e = apiError("COMMON_ERROR")
		}
		return withParams(o.FailURL, url.Values{"code": {e.Code}, "message": {e.Message}, "orderId": {o.OrderID}})
	}
	return withParams(o.SuccessURL, url.Values{
		"paymentType": {windowPaymentType}, "orderId": {o.OrderID}, "paymentKey": {key}, "amount": {o.Amount},
	})
}

// formatWon writes a whole number of won as people read it: "25000" → "25,000원". Anything
// but digits comes back unchanged with "원" appended.
func formatWon(digits string) string {
	if digits == "" || strings.IndexFunc(digits, func(r rune) bool { return r < '0' || r > '9' }) >= 0 {
		return digits + "원"
	}
	var b strings.Builder
	for i, r := range digits {
		if i > 0 && (len(digits)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	return b.String() + "원"
}
