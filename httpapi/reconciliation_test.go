package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/paymentledger/ledger/internal/testenv"
)

// GET /api/v1/reconciliation/runs: the caller's merchant's runs, newest first, a page at a time,
// every time in KST; a cursor it did not return is 400.
func TestReconciliationRuns(t *testing.T) {
	env := newEnv(t, testenv.Options{})
	for i, from := range []string{"2026-11-01", "2026-11-02", "2026-11-03"} {
		if _, err := env.Pool.Exec(context.Background(), `
			INSERT INTO reconciliation_runs (merchant_id, from_date, to_date, apply, trigger, started_at, finished_at,
			                                 payments, toss_transactions, toss_settlements, counts, unresolved, applied, error)
			VALUES ($1, $2, $2, true, 'daily', now() + make_interval(secs => $3), now() + make_interval(secs => $3 + 1),
			        10, 11, 12, '{"matched":9,"missing_at_psp":1}', 1, 2, NULLIF($4, ''))`,
			testenv.Merchant, from, i, map[bool]string{true: "Toss answered 500"}[i == 0]); err != nil {
			t.Fatal(err)
		}
	}
	type page struct {
		Runs []struct {
			ID                         int64
			From, To, Trigger, Error   string
			Apply                      bool
			Payments, TossTransactions int
			Unresolved, Applied        int
			Counts                     map[string]int
			StartedAt, FinishedAt      string
		}
		NextCursor string
	}
	get := func(query string) (int, page, string) {
		status, body := env.Request(t, "GET", "/api/v1/reconciliation/runs"+query, "")
		var p page
		if status == http.StatusOK {
			if err := json.Unmarshal(body, &p); err != nil {
				t.Fatal(err)
			}
		}
		return status, p, string(body)
	}
	status, first, body := get("?limit=2")
	if status != http.StatusOK || len(first.Runs) != 2 || first.NextCursor == "" {
		t.Fatalf("first page: %d %s", status, body)
	}
	r := first.Runs[0]
	if r.From != "2026-11-03" || first.Runs[1].From != "2026-11-02" || r.Trigger != "daily" || !r.Apply || r.Payments != 10 ||
		r.TossTransactions != 11 || r.Unresolved != 1 || r.Applied != 2 || r.Counts["matched"] != 9 || r.Error != "" {
		t.Fatalf("newest run %+v", r)
	}
	for _, m := range timeLike.FindAllStringSubmatch(body, -1) {
		if !strings.HasSuffix(m[1], "+09:00") {
			t.Errorf("%s is not in KST", m[1])
		}
	}
	status, second, body := get("?limit=2&cursor=" + first.NextCursor)
	if status != http.StatusOK || len(second.Runs) != 1 || second.NextCursor != "" || second.Runs[0].From != "2026-11-01" ||
		second.Runs[0].Error != "Toss answered 500" {
		t.Fatalf("second page: %d %s", status, body)
	}
	for _, q := range []string{"?cursor=", "?cursor=abc", "?limit=0", "?limit=101", "?limit=x"} {
		if status, _, body := get(q); status != http.StatusBadRequest {
			t.Errorf("%s: %d %s, want 400", q, status, body)
		}
	}
}
