package tosssim

import (
	"cmp"
	"net/http"
	"slices"
	"strconv"
	"time"
)

const (
	defaultTxLimit = 100
	maxTxLimit     = 5000
)

// localDateTimeLayouts are the forms startDate and endDate take: a KST local date-time with
// no offset, optionally with a fraction (Go's parser accepts ".000" after the seconds without
// it being in the layout), or a date alone meaning 00:00:00 (toss-api.md §4.5, §5.5).
var localDateTimeLayouts = []string{"2006-01-02T15:04:05", "2006-01-02"}

func parseLocalDateTime(v string) (time.Time, bool) {
	for _, layout := range localDateTimeLayouts {
		if t, err := time.ParseInLocation(layout, v, kst); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// handleTransactions is GET /v1/transactions: a bare array of the transactions whose
// transactionAt lies in [startDate, endDate], ordered by transactionAt then transactionKey,
// starting after startingAfter, at most limit rows.
func (s *Simulator) handleTransactions(x *exchange) response {
	q := x.r.URL.Query()
	start, okStart := parseLocalDateTime(q.Get("startDate"))
	end, okEnd := parseLocalDateTime(q.Get("endDate"))
	if !okStart || !okEnd {
		return errorResponse(apiError("INVALID_REQUEST"))
	}
	limit := defaultTxLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxTxLimit {
			return errorResponse(apiError("INVALID_REQUEST"))
		}
		limit = n
	}
	after := q.Get("startingAfter")

	s.mu.Lock()
	var cursor *transaction
	if after != "" {
		cursor = s.txByKey[after]
		if cursor == nil {
			s.mu.Unlock()
			return errorResponse(apiError("INVALID_TRANSACTION_KEY"))
		}
	}
	rows := make([]*transaction, 0, len(s.txs))
	for _, tx := range s.txs {
		if tx.at.Before(start) || tx.at.After(end) {
			continue
		}
		if cursor != nil && compareTx(tx, cursor) <= 0 {
			continue
		}
		rows = append(rows, tx)
	}
	slices.SortFunc(rows, compareTx)
	if len(rows) > limit {
		rows = rows[:limit]
	}
	out := make([]wireTransaction, 0, len(rows))
	for _, tx := range rows {
		out = append(out, s.renderTransaction(tx))
	}
	s.mu.Unlock()

	body, err := marshal(out)
	if err != nil {
		return internalError()
	}
	return response{status: http.StatusOK, body: body}
}

func compareTx(a, b *transaction) int {
	if c := a.at.Compare(b.at); c != 0 {
		return c
	}
	return cmp.Compare(a.key, b.key)
}
