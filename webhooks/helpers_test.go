package webhooks_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/paymentledger/ledger/commands"
	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/internal/testenv"
	"github.com/paymentledger/ledger/webhooks"
)

var ctx = context.Background()

// inboxServer serves a new inbox on pool over real HTTP.
func inboxServer(t *testing.T, pool *pgxpool.Pool, cfg webhooks.InboxConfig) string {
	t.Helper()
	srv := httptest.NewServer(webhooks.NewInbox(pool, cfg, testenv.Logger(t)))
	t.Cleanup(srv.Close)
	return srv.URL + "/webhooks/toss"
}

// answer is the inbox's answer to one post.
type answer struct {
	Status int
	Body   struct {
		Status string `json:"status"`
		Error  struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
}

// post delivers body with the given headers (a transmission id among them, or not).
func post(t *testing.T, url string, body []byte, headers map[string]string) answer {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	a := answer{Status: resp.StatusCode}
	if err := json.Unmarshal(raw, &a.Body); err != nil {
		t.Fatalf("answer %d is not JSON: %q", resp.StatusCode, raw)
	}
	if resp.StatusCode >= 500 && resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("answer %d %s: the inbox must never answer 500", resp.StatusCode, raw)
	}
	return a
}

// tid returns headers carrying a transmission id.
func tid(id string) map[string]string {
	return map[string]string{webhooks.TransmissionIDHeader: id}
}

// inboxRow is a webhook_inbox row.
type inboxRow struct {
	ID             int64
	DedupeKey      string
	TransmissionID *string
	EventType      *string
	OrderID        *string
	Headers        map[string][]string
	Body           []byte
	ReceivedAt     time.Time
	Status         string
	RejectReason   *string
	Outcome        *string
	Attempts       int
	NextAttemptAt  time.Time
	ProcessedAt    *time.Time
	LastError      *string
}

func rows(t *testing.T, pool *pgxpool.Pool) []inboxRow {
	t.Helper()
	rs, err := pool.Query(ctx, `
		SELECT id, dedupe_key, transmission_id, event_type, order_id, headers, body, received_at, status,
		       reject_reason, outcome, attempts, next_attempt_at, processed_at, last_error
		FROM webhook_inbox ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rs, pgx.RowToStructByPos[inboxRow])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func rowByKey(t *testing.T, pool *pgxpool.Pool, key string) inboxRow {
	t.Helper()
	for _, r := range rows(t, pool) {
		if r.DedupeKey == key {
			return r
		}
	}
	t.Fatalf("no row with dedupe key %q", key)
	return inboxRow{}
}

func str(p *string) string {
	if p == nil {
		return "<nil>"
	}
	return *p
}

// fakeSyncer answers Recover with err, or with status, and counts calls per order.
type fakeSyncer struct {
	mu     sync.Mutex
	calls  map[domain.OrderID]int
	err    error
	status domain.Status
}

func (f *fakeSyncer) Recover(_ context.Context, id domain.OrderID, opts commands.RecoverOptions) (commands.ConfirmResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.calls == nil {
		f.calls = map[domain.OrderID]int{}
	}
	f.calls[id]++
	if opts.NewAttempt || opts.Actor != webhooks.Actor {
		return commands.ConfirmResult{}, domain.Errorf(domain.ErrInvalidInput, "worker must not start attempts, got %+v", opts)
	}
	if f.err != nil {
		return commands.ConfirmResult{}, f.err
	}
	return commands.ConfirmResult{OrderID: id, Status: f.status}, nil
}

func (f *fakeSyncer) callsFor(id domain.OrderID) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[id]
}

func (f *fakeSyncer) total() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		n += c
	}
	return n
}

// drain runs ProcessOnce until it claims nothing.
func drain(t *testing.T, w *webhooks.Worker) int {
	t.Helper()
	total := 0
	for range 100 {
		n, err := w.ProcessOnce(ctx)
		if err != nil {
			t.Fatalf("process: %v", err)
		}
		if n == 0 {
			return total
		}
		total += n
	}
	t.Fatal("the inbox never ran dry")
	return total
}
