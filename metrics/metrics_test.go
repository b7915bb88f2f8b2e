package metrics_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/paymentledger/ledger/internal/pgtest"
	"github.com/paymentledger/ledger/metrics"
	"github.com/paymentledger/ledger/psp/toss"
)

// scrape GETs h's /metrics and returns the exposition text.
func scrape(t *testing.T, h http.Handler) string {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", rec.Code, rec.Body)
	}
	return rec.Body.String()
}

// value returns the value of series (a metric name with its labels in the exposition's order,
// which sorts them by name) in text, failing the test when the series is absent.
func value(t *testing.T, text, series string) float64 {
	t.Helper()
	for l := range strings.Lines(text) {
		rest, ok := strings.CutPrefix(strings.TrimSpace(l), series+" ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(rest, 64)
		if err != nil {
			t.Fatalf("series %s: value %q: %v", series, rest, err)
		}
		return v
	}
	t.Fatalf("series %s not in the scrape:\n%s", series, text)
	return 0
}

func wantValue(t *testing.T, text, series string, want float64) {
	t.Helper()
	if got := value(t, text, series); got != want {
		t.Errorf("%s = %v, want %v", series, got, want)
	}
}

// absent fails the test if any line of text starts with name.
func absent(t *testing.T, text, name string) {
	t.Helper()
	for l := range strings.Lines(text) {
		if strings.HasPrefix(l, name) {
			t.Errorf("%s present, want it absent: %s", name, l)
		}
	}
}

func TestRouteLatencyByTemplate(t *testing.T) {
	m := metrics.New(nil)
	r := mux.NewRouter()
	r.Use(m.HTTPMiddleware)
	api := r.PathPrefix("/api/v1").Subrouter()
	api.HandleFunc("/payments/{orderId}", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{}`)) // no WriteHeader: 200
	}).Methods(http.MethodGet)
	api.HandleFunc("/payments/checkout", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusCreated)
	}).Methods(http.MethodPost)
	r.HandleFunc("/early-hints", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusEarlyHints)
		w.WriteHeader(http.StatusTeapot)
	})
	r.HandleFunc("/silent", func(http.ResponseWriter, *http.Request) {}).Methods(http.MethodGet)
	r.HandleFunc("/panics", func(http.ResponseWriter, *http.Request) { panic("boom") })
	r.NotFoundHandler = m.HTTPMiddleware(http.NotFoundHandler())
	r.MethodNotAllowedHandler = m.HTTPMiddleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusMethodNotAllowed)
	}))
	// As httpapi does: a panic is recovered outside the router.
	srv := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		defer func() {
			if p := recover(); p != nil {
				w.WriteHeader(http.StatusInternalServerError)
			}
		}()
		r.ServeHTTP(w, req)
	})

	for _, c := range []struct{ method, path string }{
		{"GET", "/api/v1/payments/order-0001"},
		{"GET", "/api/v1/payments/order-0002"},
		{"POST", "/api/v1/payments/checkout"},
		{"DELETE", "/silent"},
		{"GET", "/no/such/route"},
		{"BREW", "/no/such/route"},
		{"GET", "/early-hints"},
		{"GET", "/silent"},
		{"GET", "/panics"},
	} {
		srv.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(c.method, c.path, nil))
	}

	text := scrape(t, m.Handler())
	const name = "paymentledger_http_request_duration_seconds_count"
	for series, want := range map[string]float64{
		`{code="200",method="GET",route="/api/v1/payments/{orderId}"}`: 2,
		`{code="201",method="POST",route="/api/v1/payments/checkout"}`: 1,
		`{code="405",method="DELETE",route="unmatched"}`:               1,
		`{code="404",method="GET",route="unmatched"}`:                  1,
		`{code="404",method="other",route="unmatched"}`:                1,
		`{code="418",method="GET",route="/early-hints"}`:               1,
		`{code="200",method="GET",route="/silent"}`:                    1,
		`{code="500",method="GET",route="/panics"}`:                    1,
	} {
		wantValue(t, text, name+series, want)
	}
	wantValue(t, text, `paymentledger_http_request_duration_seconds_bucket{code="200",method="GET",route="/api/v1/payments/{orderId}",le="+Inf"}`, 2)
	if strings.Contains(text, "order-0001") || strings.Contains(text, "BREW") {
		t.Errorf("a path or method from a request became a label:\n%s", text)
	}
}

// TestMiddlewareKeepsFlushing streams through a real server: the client must read the first
// event while the handler still waits, which only works if Flush reaches the connection.
func TestMiddlewareKeepsFlushing(t *testing.T) {
	m := metrics.New(nil)
	r := mux.NewRouter()
	r.Use(m.HTTPMiddleware)
	firstRead := make(chan struct{})
	r.HandleFunc("/events", func(w http.ResponseWriter, r *http.Request) {
		f, ok := w.(http.Flusher)
		if !ok {
			t.Error("the middleware's ResponseWriter is not an http.Flusher")
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: first\n\n")
		f.Flush()
		select {
		case <-firstRead:
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, "data: second\n\n")
		if err := http.NewResponseController(w).Flush(); err != nil {
			t.Errorf("ResponseController.Flush through the middleware: %v", err)
		}
	})
	srv := httptest.NewServer(r)
	defer srv.Close()

	resp, err := srv.Client().Get(srv.URL + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	if l, err := br.ReadString('\n'); err != nil || l != "data: first\n" {
		t.Fatalf("first line %q, %v; want it before the handler goes on", l, err)
	}
	close(firstRead)
	rest, err := io.ReadAll(br)
	if err != nil || string(rest) != "\ndata: second\n\n" {
		t.Fatalf("rest %q, %v", rest, err)
	}
	resp.Body.Close()
	srv.Close() // waits for the handler, so its observation is in
	wantValue(t, scrape(t, m.Handler()), `paymentledger_http_request_duration_seconds_count{code="200",method="GET",route="/events"}`, 1)
}

func readSample(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "psp", "toss", "testdata", "toss-samples", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestTossCallsByOperationAndOutcome(t *testing.T) {
	m := metrics.New(nil)
	// Through a real client: a success and a refusal.
	answers := map[string]struct {
		status int
		body   []byte
	}{
		"/v1/payments/pk-ok":      {200, readSample(t, "payment-done-card.json")},
		"/v1/payments/pk-refused": {403, []byte(`{"code":"REJECT_CARD_PAYMENT","message":"refused"}`)},
	}
	fake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a := answers[r.URL.Path]
		w.WriteHeader(a.status)
		w.Write(a.body)
	}))
	defer fake.Close()
	c, err := toss.New(fake.URL, "test_sk_zXLkKEypNArWmo50nX3lmeaxYG5R", toss.WithObserver(m.ObserveToss))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetPayment(context.Background(), "pk-ok"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetPayment(context.Background(), "pk-refused"); toss.ClassOf(err) != toss.ClassFinal {
		t.Fatalf("error %v, want a final refusal", err)
	}
	// Directly, with known durations: the other classes.
	m.ObserveToss(toss.CallInfo{Op: "confirm", Duration: 1500 * time.Millisecond,
		Err: &toss.Error{Op: "confirm", Class: toss.ClassUnknownOutcome, Err: errors.New("timeout")}})
	m.ObserveToss(toss.CallInfo{Op: "confirm", Duration: 250 * time.Millisecond, HTTPStatus: 401,
		Err: &toss.Error{Op: "confirm", HTTPStatus: 401, Code: "UNAUTHORIZED_KEY", Class: toss.ClassMerchantConfig}})
	m.ObserveToss(toss.CallInfo{Op: "confirm", Duration: 2 * time.Second, Err: errors.New("not a toss error")})
	m.ObserveToss(toss.CallInfo{Op: "cancel", Duration: 100 * time.Millisecond, HTTPStatus: 403,
		Err: &toss.Error{Op: "cancel", HTTPStatus: 403, Code: "FORBIDDEN_CONSECUTIVE_REQUEST", Class: toss.ClassNotExecuted}})

	text := scrape(t, m.Handler())
	const name = "paymentledger_toss_request_duration_seconds"
	wantValue(t, text, name+`_count{op="get payment",outcome="ok"}`, 1)
	wantValue(t, text, name+`_count{op="get payment",outcome="final"}`, 1)
	wantValue(t, text, name+`_count{op="confirm",outcome="unknown_outcome"}`, 2)
	wantValue(t, text, name+`_sum{op="confirm",outcome="unknown_outcome"}`, 3.5)
	wantValue(t, text, name+`_count{op="confirm",outcome="merchant_config"}`, 1)
	wantValue(t, text, name+`_bucket{op="confirm",outcome="merchant_config",le="0.25"}`, 1)
	wantValue(t, text, name+`_bucket{op="confirm",outcome="merchant_config",le="0.1"}`, 0)
	wantValue(t, text, name+`_count{op="cancel",outcome="not_executed"}`, 1)
}

func TestBreakerState(t *testing.T) {
	m := metrics.New(nil)
	const series = "paymentledger_recovery_breaker_state"
	wantValue(t, scrape(t, m.Handler()), series, 0) // the breaker starts closed
	for _, c := range []struct {
		to   string
		want float64
	}{{"open", 2}, {"half-open", 1}, {"closed", 0}, {"open", 2}, {"unheard-of", 2}} {
		m.SetBreakerState(c.to)
		wantValue(t, scrape(t, m.Handler()), series, c.want)
	}
}

func TestAuthFailuresAndRateLimits(t *testing.T) {
	m := metrics.New(nil)
	text := scrape(t, m.Handler())
	for _, r := range []string{"missing", "malformed", "unknown_key", "bad_secret", "revoked", "broken_history", "forbidden_scope", "admin_token"} {
		wantValue(t, text, `paymentledger_auth_failures_total{reason="`+r+`"}`, 0)
	}
	for _, l := range []string{"api_key", "auth_failures", "webhook", "live_streams"} {
		wantValue(t, text, `paymentledger_rate_limited_total{limiter="`+l+`"}`, 0)
	}

	m.AuthFailure("bad_secret")
	m.AuthFailure("bad_secret")
	m.AuthFailure("revoked")
	m.AuthFailure("admin_token")
	m.AuthFailure("sk_live_leaked_into_a_reason") // not a label value: counted as other
	m.RateLimited("api_key")
	m.RateLimited("/api/v1/payments/order-1")

	text = scrape(t, m.Handler())
	wantValue(t, text, `paymentledger_auth_failures_total{reason="bad_secret"}`, 2)
	wantValue(t, text, `paymentledger_auth_failures_total{reason="revoked"}`, 1)
	wantValue(t, text, `paymentledger_auth_failures_total{reason="admin_token"}`, 1)
	wantValue(t, text, `paymentledger_auth_failures_total{reason="missing"}`, 0)
	wantValue(t, text, `paymentledger_auth_failures_total{reason="other"}`, 1)
	wantValue(t, text, `paymentledger_rate_limited_total{limiter="api_key"}`, 1)
	wantValue(t, text, `paymentledger_rate_limited_total{limiter="other"}`, 1)
	if strings.Contains(text, "leaked") || strings.Contains(text, "order-1") {
		t.Errorf("a caller's value became a label:\n%s", text)
	}
}

func TestRuntimeCollectorsAndNoDatabaseGauges(t *testing.T) {
	text := scrape(t, metrics.New(nil).Handler())
	value(t, text, "go_goroutines")
	value(t, text, "process_cpu_seconds_total")
	absent(t, text, "paymentledger_recovery_backlog") // no pool, no database gauges
}

func TestNilMetricsRecordNothing(t *testing.T) {
	var m *metrics.Metrics
	m.AuthFailure("missing")
	m.RateLimited("api_key")
	m.SetBreakerState("open")
	m.ObserveToss(toss.CallInfo{Op: "confirm"})
	next := http.NotFoundHandler()
	if h := m.HTTPMiddleware(next); h == nil {
		t.Fatal("HTTPMiddleware on nil returned nil, want next")
	}
}

func TestDebugHandler(t *testing.T) {
	m := metrics.New(nil)
	m.AuthFailure("missing")
	srv := httptest.NewServer(metrics.DebugHandler(m))
	defer srv.Close()
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := srv.Client().Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, string(b)
	}
	if code, body := get("/debug/pprof/"); code != 200 || !strings.Contains(body, "goroutine") {
		t.Errorf("/debug/pprof/: %d, want the index of profiles", code)
	}
	if code, body := get("/debug/pprof/goroutine?debug=1"); code != 200 || !strings.Contains(body, "goroutine profile") {
		t.Errorf("/debug/pprof/goroutine: %d %.100s", code, body)
	}
	if code, _ := get("/debug/pprof/cmdline"); code != 200 {
		t.Errorf("/debug/pprof/cmdline: %d", code)
	}
	if code, body := get("/debug/pprof/symbol"); code != 200 || !strings.Contains(body, "num_symbols") {
		t.Errorf("/debug/pprof/symbol: %d %.100s", code, body)
	}
	code, body := get("/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	wantValue(t, body, `paymentledger_auth_failures_total{reason="missing"}`, 1)
	if code, _ := get("/"); code != http.StatusNotFound {
		t.Errorf("/: %d, want 404: the debug listener serves nothing else", code)
	}

	// Without metrics only pprof is served.
	rec := httptest.NewRecorder()
	metrics.DebugHandler(nil).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("DebugHandler(nil) /metrics: %d, want 404", rec.Code)
	}
}

// TestNamesFollowPrometheusConventions runs promlint (units, _total on counters, help texts)
// over every metric of this package, database gauges included.
func TestNamesFollowPrometheusConventions(t *testing.T) {
	m := metrics.New(pgtest.NewPool(t))
	m.ObserveToss(toss.CallInfo{Op: "confirm"})
	m.HTTPMiddleware(http.NotFoundHandler()).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	families, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range families {
		if strings.HasPrefix(f.GetName(), "paymentledger_") {
			names = append(names, f.GetName())
		}
	}
	if len(names) != 12 {
		t.Errorf("%d paymentledger_ families, want the 12 of the package doc: %v", len(names), names)
	}
	problems, err := testutil.GatherAndLint(m.Registry(), names...)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
}
