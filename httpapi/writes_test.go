package httpapi_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/paymentledger/ledger/eventstore"
	"github.com/paymentledger/ledger/internal/testenv"
	"github.com/paymentledger/ledger/projections"
)

// writtenTables are the tables a request could write to, directly or through a projection: the
// event store, the read models, the webhook inbox and the merchants' own rows. A refused request
// must leave every count unchanged.
var writtenTables = []string{
	"events", "event_streams", "payment_orders", "payment_order_lines", "ledger_orders", "journal_entries",
	"postings", "wallet_movements", "webhook_inbox", "merchants", "merchant_secrets", "api_key_index",
}

// rowCounts counts the rows of writtenTables in one statement, so the counts are of one snapshot.
func rowCounts(t testing.TB, env *testenv.Env) map[string]int64 {
	t.Helper()
	sel := make([]string, len(writtenTables))
	for i, tbl := range writtenTables {
		sel[i] = "(SELECT count(*) FROM " + tbl + ")"
	}
	vals := make([]int64, len(writtenTables))
	dst := make([]any, len(vals))
	for i := range vals {
		dst[i] = &vals[i]
	}
	if err := env.Pool.QueryRow(context.Background(), "SELECT "+strings.Join(sel, ", ")).Scan(dst...); err != nil {
		t.Fatal(err)
	}
	out := make(map[string]int64, len(vals))
	for i, tbl := range writtenTables {
		out[tbl] = vals[i]
	}
	return out
}

// projectionNames are the projections testenv runs.
var projectionNames = []string{"payment_orders", projections.LedgerName, "merchants"}

// settle waits until every projection has applied the last event, so that the read-model counts
// taken next cannot move on their own.
func settle(t testing.TB, env *testenv.Env) {
	t.Helper()
	ctx := context.Background()
	var head eventstore.Position
	if err := env.Pool.QueryRow(ctx, `SELECT transaction_id, position FROM events
		ORDER BY transaction_id DESC, position DESC LIMIT 1`).Scan(&head.Transaction, &head.Sequence); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 20*time.Second, "the projections to reach the head of the event log", func() bool {
		for _, name := range projectionNames {
			pos, err := projections.Checkpoint(ctx, env.Pool, name)
			if err != nil || pos != head {
				return false
			}
		}
		return true
	})
}

// diffCounts names the tables whose counts differ.
func diffCounts(before, after map[string]int64) string {
	var d []string
	for _, tbl := range writtenTables {
		if before[tbl] != after[tbl] {
			d = append(d, fmt.Sprintf("%s %d→%d", tbl, before[tbl], after[tbl]))
		}
	}
	return strings.Join(d, ", ")
}

// apiErrorCode checks that body is the API's error shape {"error":{"code","message"}} with both
// set, and returns the code.
func apiErrorCode(body []byte) (string, error) {
	var e struct {
		Error *struct {
			Code    *string `json:"code"`
			Message *string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &e); err != nil {
		return "", fmt.Errorf("the answer is not JSON: %v", err)
	}
	if e.Error == nil || e.Error.Code == nil || e.Error.Message == nil || *e.Error.Code == "" || *e.Error.Message == "" {
		return "", fmt.Errorf(`the answer is not {"error":{"code","message"}}`)
	}
	return *e.Error.Code, nil
}

func bearer(key string) string { return "Bearer " + key }

// basic presents key as HTTP Basic's user name with an empty password, as Toss takes its keys.
func basic(key string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte(key+":")) }

func truncateForLog(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + fmt.Sprintf("…(%d bytes)", len(s))
}
