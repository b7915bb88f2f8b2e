package web

import (
	"bytes"
	"encoding/json"
	"html/template"
	"net/http"
	"net/url"
	"time"

	"github.com/shopspring/decimal"

	"github.com/paymentledger/ledger/domain"
)

// page is what every template gets: the layout's parts and the page's own Data.
type page struct {
	Title   string
	Nav     string // the menu entry to mark as current
	Session *session
	Data    any
}

type pageTemplate = template.Template

// pageNames are the templates/<name>.html files, each rendered inside layout.html.
var pageNames = []string{"signin", "error", "payments", "payment", "review", "wallets", "ledger", "reconciliation", "daily"}

var funcs = template.FuncMap{
	"won":       won,
	"kst":       kst,
	"kstDate":   func(t time.Time) string { return t.In(domain.KST).Format(time.DateOnly) },
	"iso":       func(t time.Time) string { return t.Format(time.RFC3339) },
	"sub":       func(a, b decimal.Decimal) decimal.Decimal { return a.Sub(b) },
	"statusTag": statusTag,
	"pretty":    prettyJSON,
}

func parsePages() map[string]*pageTemplate {
	out := make(map[string]*pageTemplate, len(pageNames))
	for _, name := range pageNames {
		out[name] = template.Must(template.New("layout.html").Funcs(funcs).
			ParseFS(templateFiles, "templates/layout.html", "templates/"+name+".html"))
	}
	return out
}

// render writes the page name with status. It renders into a buffer first, so that a template
// error becomes a clean 500 and the Server-Timing header covers the whole work.
func (h *Handler) render(w http.ResponseWriter, r *http.Request, status int, name string, p page) {
	if p.Session == nil {
		p.Session = sessionOf(r)
	}
	var buf bytes.Buffer
	if err := h.pages[name].Execute(&buf, p); err != nil {
		h.logger.ErrorContext(r.Context(), "web: render", "page", name, "error", err)
		if name != "error" {
			h.renderError(w, r, http.StatusInternalServerError, "Something went wrong", "The error has been logged.")
		}
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	serverTiming(w, r)
	w.WriteHeader(status)
	_, _ = buf.WriteTo(w) // the client hung up: nothing to do
}

type errorData struct{ Heading, Message string }

func (h *Handler) renderError(w http.ResponseWriter, r *http.Request, status int, heading, msg string) {
	h.render(w, r, status, "error", page{Title: heading, Data: errorData{Heading: heading, Message: msg}})
}

// won formats an amount as people read it (domain.FormatWon).
func won(d decimal.Decimal) string { return domain.FormatWon(d) }

// kst formats a time in KST, to the second.
func kst(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.In(domain.KST).Format("2006-01-02 15:04:05") + " KST"
}

// statusTag is the CSS class of a payment status's badge.
func statusTag(status string) string {
	switch domain.Status(status) {
	case domain.StatusSuccess:
		return "ok"
	case domain.StatusPartiallyCanceled, domain.StatusCanceled:
		return "refund"
	case domain.StatusFailure, domain.StatusExpired, domain.StatusUnknown:
		return "bad"
	}
	return "neutral"
}

func prettyJSON(raw []byte) string {
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return string(raw)
	}
	return buf.String()
}

// withParams returns path with the values, skipping empty ones.
func withParams(path string, v url.Values) string {
	clean := url.Values{}
	for k, vs := range v {
		for _, s := range vs {
			if s != "" {
				clean.Add(k, s)
			}
		}
	}
	if len(clean) == 0 {
		return path
	}
	return path + "?" + clean.Encode()
}
