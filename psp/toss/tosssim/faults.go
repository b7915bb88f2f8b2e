package tosssim

import (
	"context"
	"errors"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Faults makes the simulator misbehave the way a real PSP and its network do. The zero value
// injects nothing and sends no webhooks, so a Config without Faults behaves exactly as before.
// New clamps out-of-range values (rates to [0, 1], Max below Min to Min); use Validate to
// reject them instead.
type Faults struct {
	// Latency delays every /v1 request by a uniform random duration in [Min, Max] before
	// anything else happens. A request whose context ends while it waits is dropped unexecuted.
	Latency Latency
	// ErrorRate is the share of /v1 requests answered, after auth and before anything
	// executes, with one of three retryable errors chosen uniformly: 500
	// FAILED_INTERNAL_SYSTEM_PROCESSING, 400 PROVIDER_ERROR or 429 TOO_MANY_REQUESTS. Such an
	// answer stands for "never reached processing": it is not stored under the
	// Idempotency-Key, so a retry with the same key executes.
	ErrorRate float64
	// LostResponseRate is the share of executed confirms and cancels whose answer is lost: the
	// operation runs and its answer is stored under the Idempotency-Key, then the connection is
	// closed without a response. Idempotent replays, 409s, Test-Code and injected answers are
	// never lost.
	LostResponseRate float64
	// Seed seeds the one random source behind every fault decision (math/rand/v2 PCG behind a
	// mutex). A serial sequence of requests meets the same faults for the same seed; concurrent
	// requests draw in whatever order they arrive.
	Seed int64

	// WebhookURL, when set, makes New start a background sender that POSTs a
	// PAYMENT_STATUS_CHANGED webhook for every change of a payment to DONE, ABORTED, EXPIRED,
	// PARTIAL_CANCELED or CANCELED. Call Simulator.Close to stop it.
	WebhookURL string
	// WebhookDuplicateRate is the share of webhooks whose first attempt is followed, 1–50 ms
	// later, by an extra copy with the same transmission id and retried-count 0. The copy is
	// never retried.
	WebhookDuplicateRate float64
	// WebhookReorder holds each webhook's first attempt for a uniform random 0–100 ms (real
	// time), so two webhooks of one payment can arrive in either order. Without it a payment's
	// webhooks start their first attempts in the order of the changes, each after the previous
	// one's first attempt has finished.
	WebhookReorder bool
	// TimeScale multiplies the §10.4 retry waits (1, 4, 16, 64, 256, 1024 and 4096 minutes):
	// 0.001 makes the first retry come 60 ms after the first failure. Zero or less means 1 (real
	// time). It does not scale latency, timeouts, the duplicate delay or the reorder hold.
	TimeScale float64
	// WebhookClient sends the webhooks. Default: a client with no overall timeout (each attempt
	// has its own, WebhookTimeout).
	WebhookClient *http.Client
	// WebhookTimeout is how long one attempt may take before it counts as failed. Default 10 s,
	// the time Toss gives a receiver to answer 200 (toss-api.md §10.4). Not scaled.
	WebhookTimeout time.Duration
}

// Validate reports every out-of-range setting at once.
func (f Faults) Validate() error {
	var errs []error
	if err := f.Latency.Validate(); err != nil {
		errs = append(errs, err)
	}
	for _, r := range []struct {
		name string
		v    float64
	}{
		{"error rate", f.ErrorRate},
		{"lost response rate", f.LostResponseRate},
		{"webhook duplicate rate", f.WebhookDuplicateRate},
	} {
		if err := validateRate(r.v); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", r.name, err))
		}
	}
	if f.WebhookURL != "" {
		if err := validateWebhookURL(f.WebhookURL); err != nil {
			errs = append(errs, err)
		}
	}
	if math.IsNaN(f.TimeScale) || math.IsInf(f.TimeScale, 0) || f.TimeScale < 0 {
		errs = append(errs, fmt.Errorf("time scale %v is not a finite number ≥ 0", f.TimeScale))
	}
	if f.WebhookTimeout < 0 {
		errs = append(errs, fmt.Errorf("webhook timeout %v is negative", f.WebhookTimeout))
	}
	return errors.Join(errs...)
}

// validateWebhookURL accepts an absolute http or https URL with a host (toss-api.md §10.4:
// HTTP is allowed, HTTPS recommended).
func validateWebhookURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("webhook URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("webhook URL %q is not an absolute http(s) URL", u.Redacted())
	}
	return nil
}

// normalized clamps f into range; New applies it, so a Simulator never sees a bad setting.
func (f Faults) normalized() Faults {
	clamp := func(v float64) float64 {
		if math.IsNaN(v) || v < 0 {
			return 0
		}
		return min(v, 1)
	}
	f.ErrorRate = clamp(f.ErrorRate)
	f.LostResponseRate = clamp(f.LostResponseRate)
	f.WebhookDuplicateRate = clamp(f.WebhookDuplicateRate)
	f.Latency = f.Latency.normalized()
	if !(f.TimeScale > 0) || math.IsInf(f.TimeScale, 0) {
		f.TimeScale = 1
	}
	if f.WebhookTimeout <= 0 {
		f.WebhookTimeout = defaultWebhookTimeout
	}
	if f.WebhookClient == nil {
		f.WebhookClient = &http.Client{}
	}
	return f
}

// Latency is a delay range. Min == Max is a fixed delay; the zero value is no delay.
type Latency struct {
	Min, Max time.Duration
}

// ParseLatency reads the -latency / X-Sim-Latency syntax: one duration ("20ms", "0") or a
// range of two joined by '-' ("5ms-200ms"). Durations use time.ParseDuration units.
func ParseLatency(v string) (Latency, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return Latency{}, errors.New("latency is empty")
	}
	lo, hi, isRange := strings.Cut(v, "-")
	minD, err := time.ParseDuration(strings.TrimSpace(lo))
	if err != nil {
		return Latency{}, fmt.Errorf("latency %q: want a duration or MIN-MAX: %w", v, err)
	}
	maxD := minD
	if isRange {
		if maxD, err = time.ParseDuration(strings.TrimSpace(hi)); err != nil {
			return Latency{}, fmt.Errorf("latency %q: want a duration or MIN-MAX: %w", v, err)
		}
	}
	l := Latency{Min: minD, Max: maxD}
	return l, l.Validate()
}

// Validate rejects negative durations and a Max below Min.
func (l Latency) Validate() error {
	if l.Min < 0 || l.Max < 0 {
		return fmt.Errorf("latency %s is negative", l)
	}
	if l.Max < l.Min {
		return fmt.Errorf("latency %s: max is below min", l)
	}
	return nil
}

// String gives the ParseLatency syntax.
func (l Latency) String() string {
	if l.Min == l.Max {
		return l.Min.String()
	}
	return l.Min.String() + "-" + l.Max.String()
}

func (l Latency) normalized() Latency {
	l.Min = max(l.Min, 0)
	l.Max = max(l.Max, l.Min)
	return l
}

// ParseRate reads a share in [0, 1] as written in -error-rate or X-Sim-Error-Rate.
func ParseRate(v string) (float64, error) {
	f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil {
		return 0, fmt.Errorf("rate %q is not a number", v)
	}
	return f, validateRate(f)
}

func validateRate(f float64) error {
	if math.IsNaN(f) || f < 0 || f > 1 {
		return fmt.Errorf("rate %v is outside [0, 1]", f)
	}
	return nil
}

// The per-request overrides of Faults, for tests that share one simulator. Each replaces the
// configured value for its request only; an absent or empty header keeps the configured one.
const (
	HeaderLatency          = "X-Sim-Latency"
	HeaderErrorRate        = "X-Sim-Error-Rate"
	HeaderLostResponseRate = "X-Sim-Lost-Response-Rate"
)

// requestFaults are the faults in force for one /v1 request.
type requestFaults struct {
	latency   Latency
	errorRate float64
	lostRate  float64
}

// requestFaults merges the X-Sim-* headers of r over the configured faults. A header that does
// not parse is an error (answered 400 INVALID_REQUEST).
func (s *Simulator) requestFaults(r *http.Request) (requestFaults, error) {
	f := requestFaults{
		latency:   s.cfg.Faults.Latency,
		errorRate: s.cfg.Faults.ErrorRate,
		lostRate:  s.cfg.Faults.LostResponseRate,
	}
	var errs []error
	if v := r.Header.Get(HeaderLatency); v != "" {
		l, err := ParseLatency(v)
		errs = append(errs, err)
		f.latency = l
	}
	for _, h := range []struct {
		name string
		dst  *float64
	}{{HeaderErrorRate, &f.errorRate}, {HeaderLostResponseRate, &f.lostRate}} {
		if v := r.Header.Get(h.name); v != "" {
			rate, err := ParseRate(v)
			errs = append(errs, err)
			*h.dst = rate
		}
	}
	return f, errors.Join(errs...)
}

// lockedRand is the simulator's one seeded random source for fault decisions.
type lockedRand struct {
	mu sync.Mutex
	r  *mrand.Rand
}

func newLockedRand(seed int64) *lockedRand {
	// The second PCG word is a fixed odd constant, so the seed alone decides the stream.
	return &lockedRand{r: mrand.New(mrand.NewPCG(uint64(seed), 0x9e3779b97f4a7c15))}
}

// chance reports true with probability p. 0 and 1 draw nothing, so a fault that is off does
// not shift the stream of the others.
func (lr *lockedRand) chance(p float64) bool {
	if p <= 0 {
		return false
	}
	if p >= 1 {
		return true
	}
	lr.mu.Lock()
	defer lr.mu.Unlock()
	return lr.r.Float64() < p
}

// intN is uniform in [0, n).
func (lr *lockedRand) intN(n int) int {
	lr.mu.Lock()
	defer lr.mu.Unlock()
	return lr.r.IntN(n)
}

// between is uniform in [lo, hi]; it draws nothing when lo == hi.
func (lr *lockedRand) between(lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	lr.mu.Lock()
	defer lr.mu.Unlock()
	return lo + time.Duration(lr.r.Int64N(int64(hi-lo)+1))
}

// injectedErrorCodes are the retryable answers of Faults.ErrorRate (toss-api.md §9.3: 5xx,
// 429 and PROVIDER_ERROR all mean "unknown outcome, retry").
var injectedErrorCodes = [...]string{"FAILED_INTERNAL_SYSTEM_PROCESSING", "PROVIDER_ERROR", "TOO_MANY_REQUESTS"}

// injectedError draws whether this request fails before processing, and with which answer.
func (s *Simulator) injectedError(rate float64) (response, bool) {
	if !s.rnd.chance(rate) {
		return response{}, false
	}
	code := injectedErrorCodes[s.rnd.intN(len(injectedErrorCodes))]
	s.mu.Lock()
	s.stats.InjectedErrors++
	s.mu.Unlock()
	return errorResponse(apiError(code)), true
}

// delay waits d, or until ctx ends. It reports whether the full delay passed.
func delay(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// dropConnection ends the exchange without a usable response: the connection breaks right
// after resp's status line, before any header, so the client sees "unexpected EOF" and gets
// neither the status nor the body. A close before any byte would not do: Go's http.Transport
// silently resends a request carrying an Idempotency-Key when a reused connection closes
// without a response byte (persistConn.shouldRetryRequest), and the resend would get the
// stored answer, hiding the loss. Hijacking works on HTTP/1 servers, httptest's included, and
// through wrappers that implement Hijack or Unwrap; where it does not (HTTP/2), panicking with
// http.ErrAbortHandler makes the server reset the stream instead, without logging a stack.
func (s *Simulator) dropConnection(w http.ResponseWriter, resp response) {
	s.mu.Lock()
	s.stats.LostResponses++
	s.mu.Unlock()
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	_, _ = fmt.Fprintf(conn, "HTTP/1.1 %d %s\r\n", resp.status, http.StatusText(resp.status))
	_ = conn.Close()
}
