package web

import (
	"context"
	"encoding/csv"
	"net/http"
	"time"

	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/queries"
)

// Exporter streams a filtered payments list (queries.Service.EachPayment).
type Exporter interface {
	EachPayment(ctx context.Context, merchant domain.MerchantID, q queries.ListQuery, fn func(queries.Payment) error) error
}

var _ Exporter = (*queries.Service)(nil)

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
		return cw.Write(queries.CSVColumns)
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
		return cw.Write(queries.CSVRecord(p))
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
