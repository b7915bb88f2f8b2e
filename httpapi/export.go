package httpapi

import (
	"encoding/csv"
	"errors"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/queries"
)

// exportWriteTimeout bounds each batch's write of an export: the server's WriteTimeout, meant
// for whole answers, is lifted so that a big export can run for minutes while the client reads.
const exportWriteTimeout = time.Minute

// wantsCSV says whether a payments list is asked for as CSV: ?format=csv, or an Accept header
// naming text/csv (and no ?format=json). Any other format is a 400.
func wantsCSV(r *http.Request) (bool, error) {
	switch f := r.URL.Query().Get("format"); f {
	case "csv":
		return true, nil
	case "json":
		return false, nil
	case "":
	default:
		return false, badRequest("INVALID_REQUEST", "format must be csv or json, got %q", truncate(f, 20))
	}
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		if mt, _, err := mime.ParseMediaType(strings.TrimSpace(part)); err == nil && mt == "text/csv" {
			return true, nil
		}
	}
	return false, nil
}

// exportPayments streams every payment matching q as CSV (RFC 4180, UTF-8, a header row), read
// in keyset batches by queries.EachPayment: memory stays bounded whatever the number of rows.
// Problems found before the first row (a bad cursor) are answered as usual; a failure after the
// answer has started aborts the connection, so the client sees a broken transfer, never a
// file that looks complete.
func (s *Server) exportPayments(w http.ResponseWriter, r *http.Request, q queries.ListQuery) {
	rc := http.NewResponseController(w)
	cw := csv.NewWriter(w)
	started, n := false, 0
	start := func() error {
		started = true
		h := w.Header()
		h.Set("Content-Type", "text/csv; charset=utf-8")
		h.Set("Content-Disposition", `attachment; filename="payments-`+time.Now().In(domain.KST).Format(time.DateOnly)+`.csv"`)
		h.Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
		return cw.Write(queries.CSVColumns)
	}
	err := s.queries.EachPayment(r.Context(), principalOf(r.Context()).Merchant, q, func(p queries.Payment) error {
		if !started {
			if err := start(); err != nil {
				return err
			}
		}
		if n%queries.ExportBatchSize == 0 {
			cw.Flush()
			if err := rc.SetWriteDeadline(time.Now().Add(exportWriteTimeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
				return err
			}
		}
		n++
		return cw.Write(queries.CSVRecord(p))
	})
	if err == nil && !started {
		err = start() // no payment: the header row alone
	}
	if err == nil {
		cw.Flush()
		err = cw.Error()
	}
	switch {
	case err == nil:
	case !started:
		writeError(w, r, s.logger, err)
	default:
		s.logger.WarnContext(r.Context(), "payments export cut short", "rows", n, "error", err)
		panic(http.ErrAbortHandler)
	}
}
