package web

import (
	"context"
	"encoding/csv"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/queries"
)

// Exporter streams a filtered payments list (queries.Service.EachPayment).
type Exporter interface {
	EachPayment(ctx context.Context, merchant domain.MerchantID, q queries.ListQuery, fn func(queries.Payment) error) error
}

var _ Exporter = (*queries.Service)(nil)

// csvColumns are the API's export columns (httpapi/export.go), so that a file from the back
// office and one from GET /api/v1/payments?format=csv read the same.
var csvColumns = []string{"orderId", "createdAt", "status", "orderName", "buyerId", "amount", "canceledAmount",
	"currency", "method", "paymentKey", "approvedAt", "needsReview"}

// exportURL is the CSV export of the list with these filters.
func (h *Handler) exportURL(filters map[string][]string) string {
	return withParams("/payments/export.csv", filters)
}

// exportPage serves GET /payments/export.csv?<filters>: every payment the list's filters
// select, as CSV, streamed in keyset batches. Invalid filters are a 400 page before any row;
// a failure after the first row aborts the connection, so that a cut file never looks whole.
func (h *Handler) exportPage(w http.ResponseWriter, r *http.Request) {
	q, err := queries.ParseListQuery(filtersOf(r))
	if err != nil {
		h.failed(w, r, err)
		return
	}
	cw := csv.NewWriter(w)
	started, n := false, 0
	start := func() error {
		started = true
		hd := w.Header()
		hd.Set("Content-Type", "text/csv; charset=utf-8")
		hd.Set("Content-Disposition", `attachment; filename="payments-`+h.cfg.Now().In(domain.KST).Format(time.DateOnly)+`.csv"`)
		serverTiming(w, r) // the time to the first batch
		w.WriteHeader(http.StatusOK)
		return cw.Write(csvColumns)
	}
	err = h.cfg.Exporter.EachPayment(r.Context(), sessionOf(r).Merchant, q, func(p queries.Payment) error {
		if !started {
			if err := start(); err != nil {
				return err
			}
		}
		if n%queries.ExportBatchSize == 0 {
			cw.Flush()
		}
		n++
		return cw.Write(csvRecord(p))
	})
	if err == nil && !started {
		err = start()
	}
	if err == nil {
		cw.Flush()
		err = cw.Error()
	}
	switch {
	case err == nil:
	case !started:
		h.failed(w, r, err)
	default:
		h.logger.WarnContext(r.Context(), "web: payments export cut short", "rows", n, "error", err)
		panic(http.ErrAbortHandler)
	}
}

// csvRecord is one payment's row, as the API writes it.
func csvRecord(p queries.Payment) []string {
	approved := ""
	if p.ApprovedAt != nil {
		approved = p.ApprovedAt.In(domain.KST).Format(time.RFC3339)
	}
	rec := []string{p.OrderID, p.CreatedAt.In(domain.KST).Format(time.RFC3339), p.Status, p.OrderName, p.BuyerID,
		p.Amount.String(), p.CanceledAmount.String(), p.Currency, p.Method, p.PaymentKey, approved, strconv.FormatBool(p.NeedsReview)}
	for i, v := range rec {
		rec[i] = neutralizeFormula(v)
	}
	return rec
}

// neutralizeFormula keeps a spreadsheet from running a cell as a formula (CSV injection): a
// cell starting with = + - @, a tab or a carriage return gets a leading single quote, as the
// API's export does. Buyers choose order names; staff open exports in Excel.
func neutralizeFormula(v string) string {
	if v != "" && strings.ContainsRune("=+-@\t\r", rune(v[0])) {
		return "'" + v
	}
	return v
}
