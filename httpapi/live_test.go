package httpapi_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"

	"github.com/paymentledger/ledger/commands"
	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/eventstore"
	"github.com/paymentledger/ledger/httpapi"
	"github.com/paymentledger/ledger/internal/testenv"
)

// readAnswer reads a whole answer, except a live status stream, which never ends: of that it
// reads up to the end of the first event (the payment's state) and leaves the rest; closing the
// body then closes the connection and ends the stream.
func readAnswer(resp *http.Response) ([]byte, error) {
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "text/event-stream" {
		return io.ReadAll(resp.Body)
	}
	var out bytes.Buffer
	r := bufio.NewReader(resp.Body)
	data := false
	for {
		line, err := r.ReadString('\n')
		out.WriteString(line)
		if err != nil {
			return out.Bytes(), err
		}
		switch {
		case strings.HasPrefix(line, "data:"):
			data = true
		case line == "\n" && data:
			return out.Bytes(), nil
		}
	}
}

// sseEvent is one event of a stream; a comment has only text.
type sseEvent struct {
	name, id, data string
	comment        string
}

// stream is an open live status stream read by a small SSE parser.
type stream struct {
	resp   *http.Response
	events chan sseEvent
	cancel context.CancelFunc
}

// openStream starts GET /api/v1/payments/{orderId}/events with key; header holds name, value
// pairs; orderID may end in a query. A non-200 answer is returned with its body and no stream.
func openStream(t testing.TB, base, key, orderID string, header ...string) (*stream, int, []byte) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	order, query, _ := strings.Cut(orderID, "?")
	url := base + "/api/v1/payments/" + order + "/events"
	if query != "" {
		url += "?" + query
	}
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Accept", "text/event-stream")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		defer cancel()
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return nil, resp.StatusCode, body
	}
	s := &stream{resp: resp, events: make(chan sseEvent, 64), cancel: cancel}
	t.Cleanup(s.close)
	go s.parse()
	return s, resp.StatusCode, nil
}

// parse reads the text/event-stream format: fields until a blank line; ":" starts a comment.
func (s *stream) parse() {
	defer close(s.events)
	sc := bufio.NewScanner(s.resp.Body)
	var e sseEvent
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			if e.name != "" || e.data != "" {
				s.events <- e
			}
			e = sseEvent{}
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "":
			s.events <- sseEvent{comment: value}
		case "event":
			e.name = value
		case "id":
			e.id = value
		case "data":
			e.data += value
		}
	}
}

func (s *stream) close() {
	s.cancel()
	_ = s.resp.Body.Close()
}

// next returns the next event, skipping comments unless comments is set.
func (s *stream) next(t testing.TB, comments bool) sseEvent {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case e, ok := <-s.events:
			if !ok {
				t.Fatal("the stream ended")
			}
			if e.comment != "" && !comments {
				continue
			}
			return e
		case <-deadline:
			t.Fatal("no event within 20s")
		}
	}
}

func (e sseEvent) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(e.data), &m); err != nil {
		t.Fatalf("event %s %s: data is not JSON: %q", e.name, e.id, e.data)
	}
	return m
}

// expectEvent takes the next event and checks its type, id and the status after it.
func expectEvent(t testing.TB, s *stream, name string, id int, status string) map[string]any {
	t.Helper()
	e := s.next(t, false)
	m := e.json(t)
	if e.name != name || e.id != strconv.Itoa(id) || m["status"] != status {
		t.Fatalf("event %s id %s status %v, want %s id %d status %s: %s", e.name, e.id, m["status"], name, id, status, e.data)
	}
	if name != "payment" {
		env := m["event"].(map[string]any)
		if env["type"] != name || env["streamVersion"] != float64(id) {
			t.Fatalf("envelope %v of event %s id %d", env, name, id)
		}
		if at := env["recordedAt"].(string); !strings.HasSuffix(at, "+09:00") {
			t.Fatalf("recordedAt %s is not KST", at)
		}
	}
	return m
}

func checkout(t testing.TB, env *testenv.Env) commands.CheckoutResult {
	t.Helper()
	co, err := env.Commands.Checkout(context.Background(), commands.CheckoutInput{Merchant: testenv.Merchant, OrderName: "live", BuyerID: "buyer-1",
		Lines: []domain.CheckoutLine{{SellerID: "seller-a", ProductID: "p1", Amount: decimal.NewFromInt(25000)}}})
	if err != nil {
		t.Fatal(err)
	}
	return co
}

func confirmOverHTTP(t testing.TB, env *testenv.Env, co commands.CheckoutResult) {
	t.Helper()
	key := openSession(t, env, string(co.OrderID), co.Amount.String())
	status, body := env.Request(t, "POST", "/api/v1/payments/confirm",
		fmt.Sprintf(`{"paymentKey":%q,"orderId":%q,"amount":%q}`, key, co.OrderID, co.Amount))
	if status != http.StatusOK {
		t.Fatalf("confirm: %d %s", status, body)
	}
}

func TestLiveStatusStreamsTheStateThenEveryChange(t *testing.T) {
	env := newEnv(t, testenv.Options{Relay: true})
	co := checkout(t, env)
	id := string(co.OrderID)

	s, status, body := openStream(t, env.API.URL, env.APIKey, id)
	if s == nil {
		t.Fatalf("stream: %d %s", status, body)
	}
	for name, want := range map[string]string{"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"} {
		if got := s.resp.Header.Get(name); got != want {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
	first := s.next(t, false)
	if first.name != "payment" || first.id != "1" {
		t.Fatalf("first event %s id %s, want payment id 1", first.name, first.id)
	}
	status, get := env.Request(t, "GET", "/api/v1/payments/"+id, "")
	if status != http.StatusOK || first.data != strings.TrimSpace(string(get)) {
		t.Fatalf("the first event is not GET /api/v1/payments/%s:\n%s\n%s", id, first.data, get)
	}
	for _, m := range timeLike.FindAllStringSubmatch(first.data, -1) {
		if !strings.HasSuffix(m[1], "+09:00") {
			t.Errorf("%s in the first event is not KST", m[1])
		}
	}

	confirmOverHTTP(t, env, co)
	expectEvent(t, s, string(domain.EventConfirmationStarted), 2, "EXECUTING")
	approved := expectEvent(t, s, string(domain.EventPaymentApproved), 3, "SUCCESS")
	if ev := approved["event"].(map[string]any); ev["orderId"] != id || ev["merchantId"] != string(testenv.Merchant) {
		t.Fatalf("envelope %v", ev)
	}

	// Resume after 1 (the header): only 2 and 3, then what comes next, never the state again.
	resumed, status, body := openStream(t, env.API.URL, env.APIKey, id, "Last-Event-ID", "1")
	if resumed == nil {
		t.Fatalf("resume: %d %s", status, body)
	}
	expectEvent(t, resumed, string(domain.EventConfirmationStarted), 2, "EXECUTING")
	expectEvent(t, resumed, string(domain.EventPaymentApproved), 3, "SUCCESS")
	// Resume at the current version (the query parameter): nothing until the next change.
	atEnd, status, body := openStream(t, env.API.URL, env.APIKey, id+"?lastEventId=3")
	if atEnd == nil {
		t.Fatalf("resume at 3: %d %s", status, body)
	}
	status, body = env.Request(t, "POST", "/api/v1/payments/"+id+"/cancel", `{"amount":"1000","reason":"r"}`, "Idempotency-Key", "live-1")
	if status != http.StatusOK {
		t.Fatalf("cancel: %d %s", status, body)
	}
	for _, st := range []*stream{s, resumed, atEnd} {
		e := st.next(t, false)
		if n, _ := strconv.Atoi(e.id); n != 4 || e.json(t)["event"] == nil {
			t.Fatalf("after the cancel: %s id %s %s, want version 4, the first event of the cancel", e.name, e.id, e.data)
		}
	}
}

func TestLiveStatusResumeIsChecked(t *testing.T) {
	env := newEnv(t, testenv.Options{})
	co := checkout(t, env)
	id := string(co.OrderID)
	for _, c := range []struct {
		path   string
		header []string
	}{
		{id, []string{"Last-Event-ID", "2"}},                    // past the current version 1
		{id, []string{"Last-Event-ID", "-1"}},                   // negative
		{id, []string{"Last-Event-ID", "x"}},                    // not a number
		{id + "?lastEventId=", nil},                             // empty
		{id + "?lastEventId=1e3", nil},                          // not a whole number
		{id + "?lastEventId=0", []string{"Last-Event-ID", "7"}}, // the header wins
	} {
		s, status, body := openStream(t, env.API.URL, env.APIKey, c.path, c.header...)
		if s != nil || status != http.StatusBadRequest || !strings.Contains(string(body), `"INVALID_LAST_EVENT_ID"`) {
			t.Errorf("%s %v: %d %s, want 400 INVALID_LAST_EVENT_ID", c.path, c.header, status, body)
		}
		if s != nil {
			s.close()
		}
	}
}

func TestLiveStatusHeartbeat(t *testing.T) {
	env := newEnv(t, testenv.Options{Live: httpapi.LiveConfig{Heartbeat: 20 * time.Millisecond}})
	co := checkout(t, env)
	s, status, body := openStream(t, env.API.URL, env.APIKey, string(co.OrderID))
	if s == nil {
		t.Fatalf("stream: %d %s", status, body)
	}
	if e := s.next(t, true); e.name != "payment" {
		t.Fatalf("first: %+v", e)
	}
	for range 3 {
		if e := s.next(t, true); e.comment != "ping" {
			t.Fatalf("an idle stream sent %+v, want the : ping comment", e)
		}
	}
}

func TestLiveStatusOfAnotherMerchantsOrderIs404(t *testing.T) {
	env := newEnv(t, testenv.Options{})
	co := checkout(t, env)
	other := env.NewMerchant(t, "merchant-other")
	for _, c := range []struct{ key, order string }{{other, string(co.OrderID)}, {env.APIKey, "order-missing-1"}} {
		s, status, body := openStream(t, env.API.URL, c.key, c.order)
		if s != nil || status != http.StatusNotFound || !strings.Contains(string(body), `"PAYMENT_NOT_FOUND"`) {
			t.Fatalf("%s: %d %s, want 404 PAYMENT_NOT_FOUND", c.order, status, body)
		}
	}
}

func TestLiveStreamsPerKeyAreLimited(t *testing.T) {
	env := newEnv(t, testenv.Options{Live: httpapi.LiveConfig{MaxStreamsPerKey: 2}})
	co := checkout(t, env)
	id := string(co.OrderID)
	var open []*stream
	for range 2 {
		s, status, body := openStream(t, env.API.URL, env.APIKey, id)
		if s == nil {
			t.Fatalf("stream: %d %s", status, body)
		}
		open = append(open, s)
	}
	s, status, body := openStream(t, env.API.URL, env.APIKey, id)
	if s != nil || status != http.StatusTooManyRequests || !strings.Contains(string(body), `"RATE_LIMITED"`) {
		t.Fatalf("a third stream: %d %s, want 429 RATE_LIMITED", status, body)
	}
	// The bound is per key: another key of the merchant still gets one.
	k, err := env.Merchants.IssueKey(context.Background(), testenv.Merchant, nil, "admin")
	if err != nil {
		t.Fatal(err)
	}
	if s, status, body := openStream(t, env.API.URL, k.APIKey, id); s == nil {
		t.Fatalf("another key's stream: %d %s", status, body)
	}
	// A closed stream gives its place back.
	open[0].close()
	testenv.WaitFor(t, 10*time.Second, "the closed stream's handler to return", func() bool { return env.Server.LiveStreams() == 2 })
	if s, status, body := openStream(t, env.API.URL, env.APIKey, id); s == nil {
		t.Fatalf("a stream after one closed: %d %s", status, body)
	}
}

func TestLiveStreamEndsWhenTheClientGoesAway(t *testing.T) {
	env := newEnv(t, testenv.Options{})
	co := checkout(t, env)
	s, status, body := openStream(t, env.API.URL, env.APIKey, string(co.OrderID))
	if s == nil {
		t.Fatalf("stream: %d %s", status, body)
	}
	s.next(t, false)
	if n := env.Server.LiveStreams(); n != 1 {
		t.Fatalf("%d streams open, want 1", n)
	}
	s.close()
	testenv.WaitFor(t, 10*time.Second, "the stream's handler to return after the client left", func() bool { return env.Server.LiveStreams() == 0 })
}

// BenchmarkAppendToSSE measures, per event, the time from an append returning to the event
// arriving on an open stream: the relay (LISTEN/NOTIFY, publish), JetStream, the stream's
// consumer and the SSE write. p50 and p99 are reported in milliseconds.
func BenchmarkAppendToSSE(b *testing.B) {
	env := newEnv(b, testenv.Options{Relay: true})
	co := checkout(b, env)
	s, status, body := openStream(b, env.API.URL, env.APIKey, string(co.OrderID))
	if s == nil {
		b.Fatalf("stream: %d %s", status, body)
	}
	s.next(b, false)
	version := int64(1)
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		// Any event the fold accepts will do: Apply never validates.
		e := domain.ConfirmationStarted{EventHeader: domain.EventHeader{OrderID: co.OrderID, MerchantID: testenv.Merchant, At: time.Now().In(domain.KST)},
			PaymentKey: "bench", Amount: co.Amount, Attempt: i + 1, PSPIdempotencyKey: "bench-" + strconv.Itoa(i)}
		data, err := domain.MarshalEvent(e)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := env.Store.Append(context.Background(), domain.StreamName(co.OrderID), eventstore.Exact(version), []eventstore.EventData{{
			ID: uuid.New(), Type: string(e.EventType()), SchemaVersion: domain.SchemaVersion, Data: data,
			Metadata: eventstore.Metadata{MerchantID: string(testenv.Merchant), Actor: "bench", CorrelationID: uuid.New()},
		}}); err != nil {
			b.Fatal(err)
		}
		appended := time.Now()
		version++
		if got := s.next(b, false); got.id != strconv.FormatInt(version, 10) {
			b.Fatalf("event id %s, want %d", got.id, version)
		}
		lat = append(lat, time.Since(appended))
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}
