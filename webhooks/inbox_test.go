package webhooks_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/internal/pgtest"
	"github.com/paymentledger/ledger/internal/testenv"
	"github.com/paymentledger/ledger/webhooks"
)

// samplesDir holds the webhook payloads of shared/toss-samples (real Toss deliveries; the README
// says where each came from), copied so a clone of the repository alone passes its tests.
var samplesDir = filepath.Join("testdata", "toss-samples")

// sampleHeaders are the documented webhook headers (webhook-headers-docs.json).
func sampleHeaders(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(samplesDir, "webhook-headers-docs.json"))
	if err != nil {
		t.Fatal(err)
	}
	var h map[string]string
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatal(err)
	}
	return h
}

// TestSamples posts every webhook sample and checks the answer and the stored row, then lets a
// worker with the real command service process them: none of the samples' orders is ours, so
// every pending row ends processed as an unknown order, none failed.
func TestSamples(t *testing.T) {
	type want struct {
		status    int
		row       string
		eventType string
		orderID   string
		outcome   string
	}
	wants := map[string]want{
		"webhook-billing-deleted-docs.json":             {200, webhooks.StatusProcessed, "BILLING_DELETED", "", webhooks.OutcomeIgnoredEventType},
		"webhook-cancel-status-changed-thirdparty.json": {200, webhooks.StatusProcessed, webhooks.EventCancelStatusChanged, "", webhooks.OutcomeNoOrderID},
		"webhook-cancel-status-changed.json":            {200, webhooks.StatusProcessed, webhooks.EventCancelStatusChanged, "", webhooks.OutcomeNoOrderID},
		"webhook-deposit-callback.json":                 {200, webhooks.StatusPending, webhooks.EventDepositCallback, "<UniqueId name='orderId.webhook' />", ""},
		"webhook-payment-status-changed-aborted.json":   {200, webhooks.StatusPending, webhooks.EventPaymentStatusChanged, "xxxxx", ""},
		"webhook-payment-status-changed-docs.json":      {200, webhooks.StatusPending, webhooks.EventPaymentStatusChanged, "<UniqueId name='orderId.webhook' />", ""},
		"webhook-payment-status-changed-done-race.json": {200, webhooks.StatusPending, webhooks.EventPaymentStatusChanged, "xxxxx", ""},
		"webhook-payment-status-changed-done.json":      {200, webhooks.StatusPending, webhooks.EventPaymentStatusChanged, "toss_2966480", ""},
		"webhook-headers-docs.json":                     {400, webhooks.StatusRejected, "", "", ""}, // headers, not a body
	}
	files, err := filepath.Glob(filepath.Join(samplesDir, "webhook-*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no webhook samples in %s (%v)", samplesDir, err)
	}
	env := testenv.New(t, testenv.Options{})
	url := inboxServer(t, env.Pool, webhooks.InboxConfig{})
	headers := sampleHeaders(t)
	delete(headers, "tosspayments-webhook-signature") // payment webhooks carry none
	for _, f := range files {
		name := filepath.Base(f)
		w, ok := wants[name]
		if !ok {
			t.Errorf("%s: a new sample; add its expectation", name)
			continue
		}
		body, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		h := map[string]string{}
		for k, v := range headers {
			h[k] = v
		}
		id := headers[webhooks.TransmissionIDHeader] + "_" + strings.TrimSuffix(name, ".json")
		h[webhooks.TransmissionIDHeader] = id
		a := post(t, url, body, h)
		if a.Status != w.status {
			t.Errorf("%s: answer %d %+v, want %d", name, a.Status, a.Body, w.status)
		}
		if w.status == http.StatusBadRequest && a.Body.Error.Code != "INVALID_WEBHOOK" {
			t.Errorf("%s: error code %q", name, a.Body.Error.Code)
		}
		r := rowByKey(t, env.Pool, id)
		if r.Status != w.row || str(r.EventType) != or(w.eventType) || str(r.OrderID) != or(w.orderID) ||
			(w.outcome != "" && str(r.Outcome) != w.outcome) {
			t.Errorf("%s: row %s %s %s %s, want %+v", name, r.Status, str(r.EventType), str(r.OrderID), str(r.Outcome), w)
		}
		if !bytes.Equal(r.Body, body) || str(r.TransmissionID) != id ||
			r.Headers["tosspayments-webhook-transmission-time"][0] != headers["tosspayments-webhook-transmission-time"] {
			t.Errorf("%s: the raw delivery is not kept: %q %v", name, str(r.TransmissionID), r.Headers)
		}
		if r.Status == webhooks.StatusRejected && str(r.RejectReason) == "<nil>" {
			t.Errorf("%s: rejected without a reason", name)
		}
		if sum := sha256.Sum256(body); str(r.MerchantID) != string(testenv.Merchant) || r.BodyLength == nil || *r.BodyLength != len(body) || !bytes.Equal(r.BodySHA256, sum[:]) {
			t.Errorf("%s: merchant %s, length %v, hash %x", name, str(r.MerchantID), r.BodyLength, r.BodySHA256)
		}
	}

	w := webhooks.NewWorker(env.Pool, env.Commands, webhooks.WorkerConfig{}, testenv.Logger(t))
	if n := drain(t, w); n != 5 {
		t.Errorf("worker processed %d rows, want the 5 pending ones", n)
	}
	for _, r := range rows(t, env.Pool) {
		if r.Status == webhooks.StatusPending || r.Status == webhooks.StatusFailed {
			t.Errorf("row %s left %s (%s)", r.DedupeKey, r.Status, str(r.LastError))
		}
		if r.Status == webhooks.StatusProcessed && r.OrderID != nil && str(r.Outcome) != webhooks.OutcomeUnknownOrder {
			t.Errorf("row %s outcome %s, want %q", r.DedupeKey, str(r.Outcome), webhooks.OutcomeUnknownOrder)
		}
	}
	if n := env.CountEvents(t); n != 0 {
		t.Errorf("%d events appended for orders that are not ours", n)
	}
}

func or(s string) string {
	if s == "" {
		return "<nil>"
	}
	return s
}

// TestShapes covers the forms toss-api.md §10.2 asks a receiver to accept.
func TestShapes(t *testing.T) {
	cases := []struct {
		name, body, row, eventType, orderID string
	}{
		{"deposit flat", `{"createdAt":"2022-01-01T00:00:00.000000","secret":"ps_x","status":"DONE","transactionKey":"9FF1","orderId":"order-1"}`,
			webhooks.StatusPending, webhooks.EventDepositCallback, "order-1"},
		{"deposit wrapped in data", `{"createdAt":"2022-01-01T00:00:00.000000","data":{"secret":"ps_x","status":"DONE","transactionKey":"9FF1","orderId":"order-2"}}`,
			webhooks.StatusPending, webhooks.EventDepositCallback, "order-2"},
		{"deposit flat with eventType", `{"eventType":"DEPOSIT_CALLBACK","createdAt":"2022-01-01T00:00:00.000000","secret":"ps_x","status":"DONE","orderId":"order-3"}`,
			webhooks.StatusPending, webhooks.EventDepositCallback, "order-3"},
		{"deposit wrapped with eventType", `{"eventType":"DEPOSIT_CALLBACK","createdAt":"2022-01-01T00:00:00.000000","data":{"secret":"ps_x","status":"WAITING_FOR_DEPOSIT","orderId":"order-4"}}`,
			webhooks.StatusPending, webhooks.EventDepositCallback, "order-4"},
		{"payment", `{"eventType":"PAYMENT_STATUS_CHANGED","createdAt":"2022-01-01T00:00:00.000000","data":{"orderId":"order-5","status":"DONE"}}`,
			webhooks.StatusPending, webhooks.EventPaymentStatusChanged, "order-5"},
		{"cancel naming its order", `{"eventType":"CANCEL_STATUS_CHANGED","createdAt":"2024-02-13T12:20:23+09:00","data":{"orderId":"order-6","cancelStatus":"DONE"}}`,
			webhooks.StatusPending, webhooks.EventCancelStatusChanged, "order-6"},
		{"payout envelope", `{"eventType":"payout.changed","createdAt":"2024-09-05T12:19:21+09:00","version":"1","eventId":"e1","entityType":"payout","entityBody":{}}`,
			webhooks.StatusProcessed, "payout.changed", ""},
		{"unknown event type without data", `{"eventType":"SOMETHING_NEW"}`, webhooks.StatusProcessed, "SOMETHING_NEW", ""},
	}
	pool := pgtest.NewPool(t)
	url := inboxServer(t, pool, webhooks.InboxConfig{})
	for i, c := range cases {
		id := "whtrans_shape_" + string(rune('a'+i))
		if a := post(t, url, []byte(c.body), tid(id)); a.Status != http.StatusOK || a.Body.Status != "stored" {
			t.Errorf("%s: answer %d %+v", c.name, a.Status, a.Body)
		}
		r := rowByKey(t, pool, id)
		if r.Status != c.row || str(r.EventType) != c.eventType || str(r.OrderID) != or(c.orderID) {
			t.Errorf("%s: row %s %s %s", c.name, r.Status, str(r.EventType), str(r.OrderID))
		}
		if r.Status == webhooks.StatusProcessed && r.ProcessedAt == nil {
			t.Errorf("%s: processed without processed_at", c.name)
		}
	}
}

func TestDeduplication(t *testing.T) {
	pool := pgtest.NewPool(t)
	url := inboxServer(t, pool, webhooks.InboxConfig{})
	body := []byte(`{"eventType":"PAYMENT_STATUS_CHANGED","createdAt":"2022-01-01T00:00:00.000000","data":{"orderId":"order-1","status":"DONE"}}`)

	// Toss resends under the same transmission id (its retried-count header grows).
	first := post(t, url, body, map[string]string{webhooks.TransmissionIDHeader: "whtrans_1", "tosspayments-webhook-transmission-retried-count": "0"})
	again := post(t, url, body, map[string]string{webhooks.TransmissionIDHeader: "whtrans_1", "tosspayments-webhook-transmission-retried-count": "1"})
	if first.Status != 200 || first.Body.Status != "stored" || again.Status != 200 || again.Body.Status != "duplicate" {
		t.Fatalf("answers %+v then %+v", first, again)
	}
	if got := rows(t, pool); len(got) != 1 || got[0].DedupeKey != "whtrans_1" || got[0].Headers["tosspayments-webhook-transmission-retried-count"][0] != "0" {
		t.Fatalf("rows %+v: want the first delivery only", got)
	}

	// Without a transmission id the body's hash is the key.
	if a := post(t, url, body, nil); a.Status != 200 || a.Body.Status != "stored" {
		t.Fatalf("answer %+v", a)
	}
	if a := post(t, url, body, nil); a.Status != 200 || a.Body.Status != "duplicate" {
		t.Fatalf("answer %+v", a)
	}
	sum := sha256.Sum256(body)
	r := rowByKey(t, pool, "sha256:"+hex.EncodeToString(sum[:]))
	if r.TransmissionID != nil {
		t.Errorf("transmission id %q", *r.TransmissionID)
	}
	other := bytes.Replace(body, []byte("order-1"), []byte("order-2"), 1)
	if a := post(t, url, other, nil); a.Status != 200 || a.Body.Status != "stored" {
		t.Fatalf("a different body is a different delivery: %+v", a)
	}
	if n := len(rows(t, pool)); n != 3 {
		t.Fatalf("%d rows, want 3", n)
	}
}

func TestMalformedIsRejectedNever500(t *testing.T) {
	cases := map[string]string{
		"not JSON":                   `eventType=PAYMENT_STATUS_CHANGED`,
		"empty body":                 ``,
		"empty object":               `{}`,
		"array":                      `[{"eventType":"PAYMENT_STATUS_CHANGED","data":{"orderId":"order-1"}}]`,
		"null":                       `null`,
		"truncated":                  `{"eventType":"PAYMENT_STATUS_CHANGED","data":{"orderId":"ord`,
		"two objects":                `{"eventType":"X"}{"eventType":"Y"}`,
		"payment without orderId":    `{"eventType":"PAYMENT_STATUS_CHANGED","createdAt":"2022-01-01T00:00:00.000000","data":{"status":"DONE"}}`,
		"payment without data":       `{"eventType":"PAYMENT_STATUS_CHANGED","createdAt":"2022-01-01T00:00:00.000000"}`,
		"payment data not an object": `{"eventType":"PAYMENT_STATUS_CHANGED","data":"order-1"}`,
		"payment orderId a number":   `{"eventType":"PAYMENT_STATUS_CHANGED","data":{"orderId":71}}`,
		"payment orderId empty":      `{"eventType":"PAYMENT_STATUS_CHANGED","data":{"orderId":"  "}}`,
		"payment orderId too long":   `{"eventType":"PAYMENT_STATUS_CHANGED","data":{"orderId":"` + strings.Repeat("a", 65) + `"}}`,
		"payment orderId with NUL":   `{"eventType":"PAYMENT_STATUS_CHANGED","data":{"orderId":"order\u0000-1"}}`,
		"eventType not a string":     `{"eventType":7,"data":{"orderId":"order-1"}}`,
		"cancel without data":        `{"eventType":"CANCEL_STATUS_CHANGED"}`,
		"deposit without orderId":    `{"createdAt":"2022-01-01T00:00:00.000000","secret":"ps_x","status":"DONE"}`,
		"eventType DEPOSIT no order": `{"eventType":"DEPOSIT_CALLBACK","status":"DONE"}`,
		"unknown shape":              `{"orderId":"order-1"}`,
		"invalid UTF-8":              "{\"eventType\":\"PAYMENT_STATUS_CHANGED\",\"data\":{\"order\xff\":1}}",
	}
	pool := pgtest.NewPool(t)
	url := inboxServer(t, pool, webhooks.InboxConfig{})
	for name, body := range cases {
		id := "whtrans_bad_" + strings.ReplaceAll(name, " ", "_")
		a := post(t, url, []byte(body), tid(id))
		if a.Status != http.StatusBadRequest || a.Body.Error.Code != "INVALID_WEBHOOK" || a.Body.Error.Message == "" {
			t.Errorf("%s: answer %d %+v, want 400 INVALID_WEBHOOK", name, a.Status, a.Body)
			continue
		}
		r := rowByKey(t, pool, id)
		if r.Status != webhooks.StatusRejected || str(r.RejectReason) != a.Body.Error.Message || !bytes.Equal(r.Body, []byte(body)) {
			t.Errorf("%s: row %s %q body %q", name, r.Status, str(r.RejectReason), r.Body)
		}
		// Toss resends a 400: the same answer, no second row.
		if again := post(t, url, []byte(body), tid(id)); again.Status != http.StatusBadRequest {
			t.Errorf("%s: resend answered %d", name, again.Status)
		}
	}
	if n := len(rows(t, pool)); n != len(cases) {
		t.Errorf("%d rows, want %d", n, len(cases))
	}

	// Not deliveries at all: answered, not stored.
	big := append([]byte(`{"eventType":"X","pad":"`), bytes.Repeat([]byte("a"), webhooks.DefaultMaxBodyBytes)...)
	if a := post(t, url, append(big, `"}`...), tid("whtrans_big")); a.Status != http.StatusRequestEntityTooLarge || a.Body.Error.Code != "BODY_TOO_LARGE" {
		t.Errorf("large body: %+v", a)
	}
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != http.MethodPost {
		t.Errorf("GET answered %d", resp.StatusCode)
	}
	if n := len(rows(t, pool)); n != len(cases) {
		t.Errorf("%d rows after the 413 and 405, want %d", n, len(cases))
	}
}

// TestSlowDatabaseSpools holds an exclusive lock on the inbox table: the handler must still
// answer 200 quickly, from the spool, and the worker must move the delivery into the table
// once the lock is gone.
func TestSlowDatabaseSpools(t *testing.T) {
	pool := pgtest.NewPool(t)
	dir := t.TempDir()
	url := inboxServer(t, pool, webhooks.InboxConfig{StoreTimeout: 50 * time.Millisecond, SpoolDir: dir})
	body := []byte(`{"eventType":"PAYMENT_STATUS_CHANGED","createdAt":"2022-01-01T00:00:00.000000","data":{"orderId":"order-slow","status":"DONE"}}`)
	malformed := []byte(`{"eventType":"PAYMENT_STATUS_CHANGED","data":{}}`)

	lock, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Rollback(ctx) //nolint:errcheck
	if _, err := lock.Exec(ctx, `LOCK TABLE webhook_inbox IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	a := post(t, url, body, tid("whtrans_slow"))
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("answered after %s", elapsed)
	}
	if a.Status != http.StatusOK || a.Body.Status != "spooled" {
		t.Fatalf("answer %d %+v, want 200 spooled", a.Status, a.Body)
	}
	if a := post(t, url, malformed, tid("whtrans_slow_bad")); a.Status != http.StatusBadRequest {
		t.Fatalf("malformed while slow: %d %+v", a.Status, a.Body)
	}
	lines := spoolLines(t, filepath.Join(dir, "webhook-inbox.jsonl"))
	if len(lines) != 2 || !bytes.Equal(lines[0].Body, body) || lines[0].Headers[webhooks.TransmissionIDHeader][0] != "whtrans_slow" || lines[0].Merchant != testenv.Merchant {
		t.Fatalf("spool %+v", lines)
	}
	if err := lock.Rollback(ctx); err != nil {
		t.Fatal(err)
	}

	syncer := &fakeSyncer{status: domain.StatusSuccess}
	w := webhooks.NewWorker(pool, syncer, webhooks.WorkerConfig{SpoolDir: dir}, testenv.Logger(t))
	if _, err := w.ProcessOnce(ctx); err != nil {
		t.Fatal(err)
	}
	r := rowByKey(t, pool, "whtrans_slow")
	if r.Status != webhooks.StatusProcessed || !bytes.Equal(r.Body, body) || str(r.OrderID) != "order-slow" || str(r.MerchantID) != string(testenv.Merchant) || syncer.callsFor("order-slow") != 1 {
		t.Fatalf("row %+v, %d calls", r, syncer.callsFor("order-slow"))
	}
	if r := rowByKey(t, pool, "whtrans_slow_bad"); r.Status != webhooks.StatusRejected {
		t.Fatalf("malformed row %s", r.Status)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*")); len(left) != 0 {
		t.Fatalf("spool files left: %v", left)
	}
	// Toss resends it (it may not have seen our 200): still one row.
	if a := post(t, url, body, tid("whtrans_slow")); a.Status != http.StatusOK || a.Body.Status != "duplicate" {
		t.Fatalf("resend: %+v", a)
	}
	if n := len(rows(t, pool)); n != 2 {
		t.Fatalf("%d rows, want 2", n)
	}
}

// TestUnavailableOnlyWhenNothingCanKeepIt: with the table locked and no usable spool, a
// well-formed webhook is answered 503 (Toss resends); a malformed one is still 400.
func TestUnavailableOnlyWhenNothingCanKeepIt(t *testing.T) {
	pool := pgtest.NewPool(t)
	notADir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notADir, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	url := inboxServer(t, pool, webhooks.InboxConfig{StoreTimeout: 50 * time.Millisecond, SpoolDir: filepath.Join(notADir, "spool")})
	noSpool := inboxServer(t, pool, webhooks.InboxConfig{StoreTimeout: 50 * time.Millisecond})
	lock, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Rollback(ctx) //nolint:errcheck
	if _, err := lock.Exec(ctx, `LOCK TABLE webhook_inbox IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"eventType":"PAYMENT_STATUS_CHANGED","data":{"orderId":"order-1"}}`)
	for _, u := range []string{url, noSpool} {
		if a := post(t, u, body, tid("whtrans_503")); a.Status != http.StatusServiceUnavailable || a.Body.Error.Code != "UNAVAILABLE" {
			t.Errorf("answer %d %+v, want 503 UNAVAILABLE", a.Status, a.Body)
		}
		if a := post(t, u, []byte(`[]`), tid("whtrans_503_bad")); a.Status != http.StatusBadRequest {
			t.Errorf("malformed: %d %+v, want 400", a.Status, a.Body)
		}
	}
}

type spooled struct {
	ReceivedAt time.Time           `json:"receivedAt"`
	Merchant   domain.MerchantID   `json:"merchant,omitempty"`
	Headers    map[string][]string `json:"headers"`
	Body       []byte              `json:"body"`
}

func spoolLines(t *testing.T, path string) []spooled {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("spool file: %v", err)
	}
	defer f.Close()
	var out []spooled
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 4<<20)
	for sc.Scan() {
		var l spooled
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("spool line %q: %v", sc.Bytes(), err)
		}
		out = append(out, l)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestDrainSetsBadLinesAside: a line cut short by a crash (never answered 200) and a line the
// database refuses go to the poison file; they do not block the good lines.
func TestDrainSetsBadLinesAside(t *testing.T) {
	pool := pgtest.NewPool(t)
	dir := t.TempDir()
	good := spooled{ReceivedAt: time.Now(), Headers: map[string][]string{webhooks.TransmissionIDHeader: {"whtrans_good"}},
		Body: []byte(`{"eventType":"PAYMENT_STATUS_CHANGED","data":{"orderId":"order-1"}}`)}
	refused := spooled{ReceivedAt: time.Now(), Headers: map[string][]string{webhooks.TransmissionIDHeader: {"whtrans_refused"}, "x-nul": {"a\x00b"}},
		Body: []byte(`{"eventType":"BILLING_DELETED","data":{}}`)}
	var buf bytes.Buffer
	for _, l := range []spooled{refused, good} {
		b, err := json.Marshal(l)
		if err != nil {
			t.Fatal(err)
		}
		buf.Write(append(b, '\n'))
	}
	buf.WriteString(`{"receivedAt":"2026-01-01T00:00:00Z","hea`) // torn by a crash
	if err := os.WriteFile(filepath.Join(dir, "webhook-inbox.jsonl"), buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	syncer := &fakeSyncer{status: domain.StatusSuccess}
	w := webhooks.NewWorker(pool, syncer, webhooks.WorkerConfig{SpoolDir: dir}, testenv.Logger(t))
	if n, err := w.ProcessOnce(ctx); n != 1 || err != nil {
		t.Fatalf("process: %d %v", n, err)
	}
	if got := rows(t, pool); len(got) != 1 || got[0].DedupeKey != "whtrans_good" || got[0].Status != webhooks.StatusProcessed {
		t.Fatalf("rows %+v", got)
	}
	poison, err := os.ReadFile(filepath.Join(dir, "webhook-inbox.poison.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(string(poison)), "\n"); len(lines) != 2 ||
		!strings.Contains(lines[0], "whtrans_refused") || !strings.HasPrefix(lines[1], `{"receivedAt":"2026-01-01T00:00:00Z","hea`) {
		t.Fatalf("poison file %q", poison)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "webhook-inbox.*.jsonl")); len(left) != 1 {
		t.Fatalf("files left %v, want the poison file only", left)
	}
}
