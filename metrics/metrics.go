// Package metrics owns the service's Prometheus metrics: their names, labels and buckets, the
// registry they live in, the /metrics handler, and the debug listener's handler (pprof).
//
// Everything is registered on the Metrics' own prometheus.Registry, never on the global default,
// so two instances (tests, or two servers in one process) never collide and no library adds
// series behind our back. Besides the Go runtime and process collectors it exports:
//
//	paymentledger_http_request_duration_seconds{route,method,code}   histogram, HTTPMiddleware
//	paymentledger_toss_request_duration_seconds{op,outcome}          histogram, ObserveToss
//	paymentledger_recovery_breaker_state                             gauge 0 closed, 1 half-open, 2 open
//	paymentledger_auth_failures_total{reason}                        counter, AuthFailure
//	paymentledger_rate_limited_total{limiter}                        counter, RateLimited
//	paymentledger_recovery_backlog                                   gauge, sampled from the database
//	paymentledger_needs_review                                       gauge, sampled from the database
//	paymentledger_webhook_inbox_pending                              gauge, sampled from the database
//	paymentledger_webhook_inbox_oldest_pending_seconds               gauge, sampled from the database
//	paymentledger_projection_lag_events{projection}                  gauge, sampled from the database
//	paymentledger_projection_lag_seconds{projection}                 gauge, sampled from the database
//	paymentledger_projection_parked_events{projection}               gauge, sampled from the database
//	paymentledger_relay_lag_events{relay}                            gauge, sampled from the database
//	paymentledger_relay_lag_seconds{relay}                           gauge, sampled from the database
//
// Label values come from closed sets (route templates, not paths; known methods, reasons and
// limiters, anything else as "other"), so no request can grow the number of series.
//
// The database gauges are computed at each scrape, in two round trips under a 2 s deadline, not
// by a background loop: they cost nothing between scrapes and are never stale. When the database
// cannot be sampled they are all left out of that scrape, the other metrics are still served,
// and promhttp_metric_handler_errors_total{cause="gathering"} counts the failure.
// paymentledger_projection_lag_events counts up to 100000 (a value of 100000 means at least
// that), so a projection far behind does not make every scrape slow.
//
// Every method of Metrics is safe for concurrent use.
package metrics

import (
	"net/http"
	"slices"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/paymentledger/ledger/projections"
	"github.com/paymentledger/ledger/psp/toss"
)

const namespace = "paymentledger"

// Metrics holds the service's metrics and their registry. The recording methods (ObserveToss,
// SetBreakerState, AuthFailure, RateLimited) do nothing on a nil *Metrics, so a component built
// without metrics (in a test) needs no stand-in.
type Metrics struct {
	reg     *prometheus.Registry
	handler http.Handler
	db      *dbCollector // nil without a pool

	httpDuration *prometheus.HistogramVec
	tossDuration *prometheus.HistogramVec
	breakerState prometheus.Gauge
	authFailures *prometheus.CounterVec
	rateLimited  *prometheus.CounterVec
}

// Option configures New.
type Option func(*options)

type options struct {
	now         func() time.Time
	projections []string
	relays      []string
}

// WithClock sets the clock the database gauges measure ages against (default time.Now), as the
// rest of the service passes time in.
func WithClock(now func() time.Time) Option {
	return func(o *options) {
		if now != nil {
			o.now = now
		}
	}
}

// WithProjections replaces the projections whose lag is reported even before their first
// checkpoint (default: the payment_orders and ledger projections). Projections with a row in
// projection_checkpoints are reported either way.
func WithProjections(names ...string) Option {
	return func(o *options) { o.projections = append([]string(nil), names...) }
}

// WithRelays names the relays whose lag is reported even before their first checkpoint (none
// by default); relays with a row in relay_checkpoints are reported either way.
func WithRelays(names ...string) Option {
	return func(o *options) { o.relays = append([]string(nil), names...) }
}

// New builds the metrics on a new registry with the Go and process collectors. With a non-nil
// pool the database gauges are added, sampled from pool at each scrape; pool may be nil (then
// they are left out).
func New(pool *pgxpool.Pool, opts ...Option) *Metrics {
	o := options{
		now:         time.Now,
		projections: []string{projections.PaymentOrders{}.Name(), projections.LedgerName},
	}
	for _, opt := range opts {
		opt(&o)
	}
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		httpDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Subsystem: "http", Name: "request_duration_seconds",
			Help: "Time to serve an HTTP request, by route template (\"unmatched\" when no route matched), method and status code.",
			// Up to a minute: a confirm may wait for Toss through its retries.
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"route", "method", "code"}),
		tossDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Subsystem: "toss", Name: "request_duration_seconds",
			Help: "Time of one HTTP call to Toss Payments, by operation and outcome (ok, unknown_outcome, final, merchant_config, not_executed).",
			// Toss's own deadlines are 30 s (payments) and 65 s (lookups).
			Buckets: []float64{.025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"op", "outcome"}),
		breakerState: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Subsystem: "recovery", Name: "breaker_state",
			Help: "State of the recovery sweeper's circuit breaker on Toss: 0 closed, 1 half-open, 2 open.",
		}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "auth_failures_total",
			Help: "Requests refused by authentication or authorization, by reason.",
		}, []string{"reason"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "rate_limited_total",
			Help: "Requests refused by a rate limiter, by limiter.",
		}, []string{"limiter"}),
	}
	// Series that exist from the start: a rate() over a counter that appears only at its first
	// increment misses that increment.
	for _, r := range authReasons {
		m.authFailures.WithLabelValues(r)
	}
	for _, l := range limiters {
		m.rateLimited.WithLabelValues(l)
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.httpDuration, m.tossDuration, m.breakerState, m.authFailures, m.rateLimited,
	)
	if pool != nil {
		m.db = newDBCollector(pool, o.now, o.projections, o.relays)
		m.reg.MustRegister(m.db)
	}
	// ContinueOnError: when the database cannot be sampled, the other metrics are still served
	// (they matter most then) and promhttp_metric_handler_errors_total{cause="gathering"} counts
	// the failure, which is how Prometheus handlers report a failed collection; nothing is
	// logged, so a database outage does not add a log line per scrape.
	m.handler = promhttp.InstrumentMetricHandler(m.reg,
		promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg, ErrorHandling: promhttp.ContinueOnError}))
	return m
}

// Registry returns the registry the metrics live in, for collectors owned elsewhere.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in the Prometheus exposition formats (the /metrics endpoint).
func (m *Metrics) Handler() http.Handler { return m.handler }

// ObserveToss records one call to Toss. Pass it to the Toss client:
// toss.New(url, key, toss.WithObserver(m.ObserveToss)).
func (m *Metrics) ObserveToss(ci toss.CallInfo) {
	if m == nil {
		return
	}
	m.tossDuration.WithLabelValues(ci.Op, tossOutcome(ci.Err)).Observe(ci.Duration.Seconds())
}

// tossOutcome is "ok" or the class of the error, as a label value.
func tossOutcome(err error) string {
	if err == nil {
		return "ok"
	}
	switch toss.ClassOf(err) {
	case toss.ClassUnknownOutcome:
		return "unknown_outcome"
	case toss.ClassFinal:
		return "final"
	case toss.ClassMerchantConfig:
		return "merchant_config"
	case toss.ClassNotExecuted:
		return "not_executed"
	}
	// A class added to toss without a label here: the caller must still treat it as unknown.
	return "unknown_outcome"
}

// SetBreakerState sets the breaker gauge from a state name as recovery reports it ("closed",
// "half-open", "open"; anything else is ignored). Pass it as recovery.Config.OnBreakerStateChange.
func (m *Metrics) SetBreakerState(to string) {
	if m == nil {
		return
	}
	switch to {
	case "closed":
		m.breakerState.Set(0)
	case "half-open":
		m.breakerState.Set(1)
	case "open":
		m.breakerState.Set(2)
	}
}

// The label values AuthFailure and RateLimited accept; anything else is counted as "other", so
// that a caller passing a key, a path or an error text cannot create series (or leak a secret
// into them).
var (
	authReasons = []string{"missing", "malformed", "unknown_key", "bad_secret", "revoked", "broken_history", "forbidden_scope", "admin_token", "other"}
	limiters    = []string{"api_key", "auth_failures", "webhook", "live_streams", "other"}
)

// AuthFailure counts a request refused by authentication or authorization. reason is one of
// missing, malformed, unknown_key, bad_secret, revoked, broken_history (merchants.Reason*),
// forbidden_scope or admin_token (httpapi's); any other value counts as "other".
func (m *Metrics) AuthFailure(reason string) {
	if m == nil {
		return
	}
	m.authFailures.WithLabelValues(closedLabel(reason, authReasons)).Inc()
}

// RateLimited counts a request refused by a rate limiter: api_key, auth_failures, webhook or
// live_streams (SSE streams per key); any other value counts as "other".
func (m *Metrics) RateLimited(limiter string) {
	if m == nil {
		return
	}
	m.rateLimited.WithLabelValues(closedLabel(limiter, limiters)).Inc()
}

func closedLabel(v string, known []string) string {
	if slices.Contains(known, v) {
		return v
	}
	return "other"
}
