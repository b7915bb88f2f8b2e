package web

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gorilla/mux"
	"github.com/shopspring/decimal"

	"github.com/paymentledger/ledger/commands"
	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/httpapi"
	"github.com/paymentledger/ledger/queries"
)

// listPageSize is the payments shown per page.
const listPageSize = 50

// filterNames are the list's filters, exactly the parameters queries.ParseListQuery reads.
var filterNames = []string{"q", "from", "to", "type", "sellerId", "minAmount", "maxAmount", "status", "needsReview"}

// statuses are the payment statuses offered by the list's status filter.
var statuses = []domain.Status{domain.StatusNotStarted, domain.StatusExecuting, domain.StatusSuccess, domain.StatusFailure,
	domain.StatusUnknown, domain.StatusExpired, domain.StatusPartiallyCanceled, domain.StatusCanceled}

type paymentsData struct {
	Filters   map[string]string // the form's values, as given
	Statuses  []domain.Status
	Error     string
	Payments  []queries.Payment
	NextURL   string
	FirstURL  string // on a page after the first
	ExportURL string // "" while the export is not available
}

// filtersOf returns the filter parameters of a request, without cursor and the rest.
func filtersOf(r *http.Request) url.Values {
	v := url.Values{}
	for _, n := range filterNames {
		if s := r.URL.Query().Get(n); s != "" {
			v.Set(n, s)
		}
	}
	return v
}

// paymentsPage serves GET /payments: the filter form (a bookmarkable GET) and one page of the
// filtered list, newest first, from one list query.
func (h *Handler) paymentsPage(w http.ResponseWriter, r *http.Request) {
	filters := filtersOf(r)
	d := paymentsData{Filters: map[string]string{}, Statuses: statuses}
	for k := range filters {
		d.Filters[k] = filters.Get(k)
	}
	q, err := queries.ParseListQuery(filters)
	cursor := r.URL.Query().Get("cursor")
	if err == nil {
		q.Limit, q.Cursor = listPageSize, cursor
		var res queries.Page
		if res, err = h.cfg.Payments.ListPayments(r.Context(), sessionOf(r).Merchant, q); err == nil {
			d.Payments = res.Payments
			if res.NextCursor != "" {
				next := url.Values{"cursor": {res.NextCursor}}
				for k, vs := range filters {
					next[k] = vs
				}
				d.NextURL = withParams("/payments", next)
			}
			if cursor != "" {
				d.FirstURL = withParams("/payments", filters)
			}
			d.ExportURL = h.exportURL(filters)
		}
	}
	status := http.StatusOK
	if err != nil {
		if domain.KindOf(err) != domain.KindInvalid {
			h.failed(w, r, err)
			return
		}
		d.Error, status = messageOf(err), http.StatusBadRequest
	}
	h.render(w, r, status, "payments", page{Title: "Payments", Nav: "payments", Data: d})
}

// messageOf is the people's part of a domain error (every problem, when several are joined).
func messageOf(err error) string {
	var msgs []string
	var walk func(error)
	walk = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		var de *domain.Error
		if errors.As(e, &de) {
			msgs = append(msgs, de.Message)
		}
	}
	walk(err)
	return strings.Join(msgs, "; ")
}

type paymentData struct {
	OrderID   string
	Payment   queries.Payment
	Balance   decimal.Decimal
	Broken    bool   // the stored history failed verification
	Message   string // why it is broken
	Row       *queries.Payment
	CanRefund bool
	IdemKey   string
	// The refund just made, or why it was refused; the form's values when it was.
	Result      *commands.CancelResult
	RefundError string
	Amount      string
	Reason      string
}

// paymentPage serves GET /payments/{orderId}.
func (h *Handler) paymentPage(w http.ResponseWriter, r *http.Request) {
	h.showPayment(w, r, http.StatusOK, paymentData{})
}

// showPayment reads the payment of the URL (another merchant's is not found, exactly like a
// missing one) and renders it with d's refund outcome.
func (h *Handler) showPayment(w http.ResponseWriter, r *http.Request, status int, d paymentData) {
	s := sessionOf(r)
	d.OrderID = mux.Vars(r)["orderId"]
	p, err := h.cfg.Payments.Payment(r.Context(), s.Merchant, d.OrderID)
	switch {
	case errors.Is(err, domain.ErrHistoryBroken):
		// The event history is not shown as truth; the read model's row says where it stood.
		d.Broken, d.Message = true, messageOf(err)
		if list, err := h.cfg.Payments.ListPayments(r.Context(), s.Merchant, queries.ListQuery{Q: d.OrderID, Limit: 5}); err == nil {
			for _, row := range list.Payments {
				if row.OrderID == d.OrderID {
					d.Row = &row
				}
			}
		}
		h.render(w, r, http.StatusConflict, "payment", page{Title: "Payment " + d.OrderID, Nav: "payments", Data: d})
		return
	case err != nil:
		h.failed(w, r, err)
		return
	}
	d.Payment = p
	d.Balance = p.Amount.Sub(p.CanceledAmount)
	st := domain.Status(p.Status)
	d.CanRefund = s.Can(string(domain.ScopeRefundsWrite)) && !p.CancelPending && d.Balance.IsPositive() &&
		(st == domain.StatusSuccess || st == domain.StatusPartiallyCanceled)
	// A fresh key per form: submitting this form twice refunds once.
	d.IdemKey = "web-" + newToken()
	h.render(w, r, status, "payment", page{Title: "Payment " + d.OrderID, Nav: "payments", Data: d})
}

// refund serves POST /payments/{orderId}/refund: the command the API's cancel route calls, with
// the form's idempotency key.
func (h *Handler) refund(w http.ResponseWriter, r *http.Request) {
	d := paymentData{Amount: r.PostFormValue("amount"), Reason: strings.TrimSpace(r.PostFormValue("reason"))}
	orderID, err := domain.ParseOrderID(mux.Vars(r)["orderId"])
	if err != nil {
		h.renderError(w, r, http.StatusNotFound, "Not found", "There is no payment "+clip(mux.Vars(r)["orderId"], 64)+".")
		return
	}
	// People type amounts as they read them: 5,000 and 5,000원 are 5000.
	text := strings.TrimSuffix(strings.ReplaceAll(strings.TrimSpace(d.Amount), ",", ""), "원")
	amount, err := domain.ParseAmount(text, domain.KRW)
	if err != nil {
		d.RefundError = messageOf(err)
		h.showPayment(w, r, http.StatusBadRequest, d)
		return
	}
	res, err := h.cfg.Refunds.Cancel(r.Context(), commands.CancelInput{Merchant: sessionOf(r).Merchant, OrderID: orderID,
		IdempotencyKey: r.PostFormValue("idempotencyKey"), Amount: &amount, Reason: d.Reason})
	switch kind := domain.KindOf(err); {
	case err == nil:
		d.Result, d.Amount, d.Reason = &res, "", ""
		h.showPayment(w, r, http.StatusOK, d)
	case kind == domain.KindNotFound || kind == domain.KindInternal:
		h.failed(w, r, err)
	default:
		d.RefundError = messageOf(err)
		h.showPayment(w, r, httpapi.StatusOf(kind), d)
	}
}

type reviewRow struct {
	Payment queries.Payment
	Reasons []string
}

type reviewData struct {
	Rows     []reviewRow
	NextURL  string
	FirstURL string
}

// reviewPageSize is the review queue's page: each row is read whole for its reasons.
const reviewPageSize = 20

// reviewPage serves GET /review: the payments that need a person, each with why. The list row
// does not say which of the reasons holds, so each payment of the (short) page is read: a
// broken history fails that read, differences with Toss come with it.
func (h *Handler) reviewPage(w http.ResponseWriter, r *http.Request) {
	s := sessionOf(r)
	cursor := r.URL.Query().Get("cursor")
	res, err := h.cfg.Payments.ListPayments(r.Context(), s.Merchant, queries.ListQuery{NeedsReview: true, Limit: reviewPageSize, Cursor: cursor})
	if err != nil {
		h.failed(w, r, err)
		return
	}
	var d reviewData
	for _, row := range res.Payments {
		rr := reviewRow{Payment: row}
		p, err := h.cfg.Payments.Payment(r.Context(), s.Merchant, row.OrderID)
		switch {
		case errors.Is(err, domain.ErrHistoryBroken):
			rr.Reasons = append(rr.Reasons, "History failed verification: its hash chain is broken.")
		case err != nil:
			h.failed(w, r, err)
			return
		default:
			for _, diff := range p.Reconciliation {
				rr.Reasons = append(rr.Reasons, "Difference with Toss ("+diff.Category+"): "+diff.Detail)
			}
		}
		if row.Failure != nil {
			rr.Reasons = append(rr.Reasons, row.Failure.Code+": "+row.Failure.Message)
		}
		if len(rr.Reasons) == 0 {
			rr.Reasons = append(rr.Reasons, "Flagged for review ("+row.Status+").")
		}
		d.Rows = append(d.Rows, rr)
	}
	if res.NextCursor != "" {
		d.NextURL = withParams("/review", url.Values{"cursor": {res.NextCursor}})
	}
	if cursor != "" {
		d.FirstURL = "/review"
	}
	h.render(w, r, http.StatusOK, "review", page{Title: "Needs review", Nav: "review", Data: d})
}

// asOfDay reads a date parameter (KST) as the end of that day; absent, now.
func (h *Handler) asOfDay(r *http.Request, name string) (time.Time, string, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		now := h.cfg.Now().In(domain.KST)
		return now, now.Format(time.DateOnly), nil
	}
	d, err := time.ParseInLocation(time.DateOnly, v, domain.KST)
	if err != nil || d.Year() < 2000 || d.Year() > 9999 {
		return time.Time{}, v, domain.Errorf(domain.ErrInvalidInput, "%s must be a date such as 2026-12-01, got %q", name, clip(v, 40))
	}
	return d.AddDate(0, 0, 1).Add(-time.Microsecond), v, nil
}

type walletData struct {
	SellerID  string
	AsOf      string
	Error     string
	Wallet    *queries.Wallet
	Total     decimal.Decimal
	Movements []queries.WalletMovement
	NextURL   string // older movements
	FirstURL  string // on a page after the first: the newest movements
}

// walletPageSize is how many movements the wallet page shows at a time, newest first.
const walletPageSize = queries.DefaultMovementsPageSize

// walletPage serves GET /wallets?sellerId=&asOf=: a seller's pending and available money and
// the newest movements behind them, with a link to older ones (cursor=). The totals are as of
// the moment the movements are: without asOf, a later page stays at the first page's moment
// (its cursor holds it) rather than moving on to now.
func (h *Handler) walletPage(w http.ResponseWriter, r *http.Request) {
	s := sessionOf(r)
	params := r.URL.Query()
	d := walletData{SellerID: strings.TrimSpace(params.Get("sellerId"))}
	cursor := params.Get("cursor")
	at, asOfText, err := h.asOfDay(r, "asOf")
	if err == nil && params.Get("asOf") == "" && cursor != "" {
		at = time.Time{} // the cursor's moment
	}
	d.AsOf = asOfText
	status := http.StatusOK
	if err == nil && d.SellerID != "" {
		seller := domain.SellerID(d.SellerID)
		var res queries.MovementsPage
		res, err = h.cfg.Ledger.WalletMovements(r.Context(), s.Merchant, seller, at, "", queries.MovementsQuery{Limit: walletPageSize, Cursor: cursor})
		var wal queries.Wallet
		if err == nil {
			wal, err = h.cfg.Ledger.Wallet(r.Context(), s.Merchant, seller, res.AsOf, "")
		}
		if err == nil {
			d.Wallet, d.Total, d.Movements = &wal, wal.Pending.Add(wal.Available), res.Movements
			d.AsOf = res.AsOf.In(domain.KST).Format(time.DateOnly)
			first := url.Values{"sellerId": {d.SellerID}, "asOf": {params.Get("asOf")}}
			if res.NextCursor != "" {
				d.NextURL = withParams("/wallets", url.Values{"sellerId": first["sellerId"], "asOf": first["asOf"], "cursor": {res.NextCursor}})
			}
			if cursor != "" {
				d.FirstURL = withParams("/wallets", first)
			}
		}
	}
	if err != nil {
		if domain.KindOf(err) != domain.KindInvalid {
			h.failed(w, r, err)
			return
		}
		d.Error, d.Wallet, status = messageOf(err), nil, http.StatusBadRequest
	}
	h.render(w, r, status, "wallets", page{Title: "Seller wallets", Nav: "wallets", Data: d})
}

type ledgerData struct {
	AsOf     string
	Error    string
	Trial    *queries.TrialBalance
	Balanced bool
}

// trialBalancePage serves GET /ledger?asOf=: the trial balance at the end of a KST day.
func (h *Handler) trialBalancePage(w http.ResponseWriter, r *http.Request) {
	d := ledgerData{}
	at, asOfText, err := h.asOfDay(r, "asOf")
	d.AsOf = asOfText
	if err != nil {
		d.Error = messageOf(err)
		h.render(w, r, http.StatusBadRequest, "ledger", page{Title: "Trial balance", Nav: "ledger", Data: d})
		return
	}
	tb, err := h.cfg.Ledger.TrialBalance(r.Context(), sessionOf(r).Merchant, at, "")
	if err != nil {
		h.failed(w, r, err)
		return
	}
	d.Trial, d.Balanced = &tb, tb.TotalDebits.Equal(tb.TotalCredits)
	h.render(w, r, http.StatusOK, "ledger", page{Title: "Trial balance", Nav: "ledger", Data: d})
}

type reconciliationData struct {
	Runs            []queries.ReconciliationRun
	Differences     []queries.OrderDifference // open, for a person
	MoreDifferences bool
	NextURL         string
	FirstURL        string
}

// reconciliationPage serves GET /reconciliation: the differences with Toss left open, each
// linking to its payment, then the merchant's runs, newest first, with what each found by
// category.
func (h *Handler) reconciliationPage(w http.ResponseWriter, r *http.Request) {
	cursor := r.URL.Query().Get("cursor")
	res, err := h.cfg.Payments.ReconciliationRuns(r.Context(), sessionOf(r).Merchant, queries.RunsQuery{Cursor: cursor})
	if err != nil {
		h.failed(w, r, err)
		return
	}
	diffs, more, err := h.cfg.Payments.OpenDifferences(r.Context(), sessionOf(r).Merchant)
	if err != nil {
		h.failed(w, r, err)
		return
	}
	d := reconciliationData{Runs: res.Runs, Differences: diffs, MoreDifferences: more}
	if res.NextCursor != "" {
		d.NextURL = withParams("/reconciliation", url.Values{"cursor": {res.NextCursor}})
	}
	if cursor != "" {
		d.FirstURL = "/reconciliation"
	}
	h.render(w, r, http.StatusOK, "reconciliation", page{Title: "Reconciliation", Nav: "reconciliation", Data: d})
}
