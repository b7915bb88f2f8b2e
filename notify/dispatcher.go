package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/merchants"
	"github.com/paymentledger/ledger/natsbus"
)

// Targets is what the Dispatcher needs of the merchants' configuration. *merchants.Service
// implements it.
type Targets interface {
	// NotificationTargets lists the merchants with an endpoint now.
	NotificationTargets(ctx context.Context) ([]merchants.NotificationTarget, error)
	// NotificationSecret opens a signing secret.
	NotificationSecret(ctx context.Context, id domain.MerchantID, secretID string) ([]byte, error)
}

var _ Targets = (*merchants.Service)(nil)

// Config tunes a Dispatcher; zero values take the defaults.
type Config struct {
	// MaxDeliver is how many times a message is POSTed before it becomes a dead letter
	// (NOTIFY_MAX_DELIVER; default 10).
	MaxDeliver int
	// BackOff is the wait after failed attempt n (BackOff[n-1], the last entry for any later
	// attempt). Default 10s, 30s, 1m, 5m, 10m, 30m, 1h, 2h, 4h: about 8 hours 46 minutes from
	// the first attempt to the tenth.
	BackOff []time.Duration
	// HTTPTimeout bounds one POST, answer included (default 10s).
	HTTPTimeout time.Duration
	// PollInterval is how often endpoint changes are looked for (default 5s).
	PollInterval time.Duration
	// Replicas of NOTIFY_DLQ and NOTIFY_REDRIVE (as natsbus.Config.Replicas).
	Replicas int
	// DeadLetterMaxAge drops dead letters older than this; 0 keeps them until redriven.
	DeadLetterMaxAge time.Duration
	// Transport, when set, replaces the HTTP transport (tests, proxies).
	Transport http.RoundTripper
}

// DefaultBackOff is Config.BackOff's default.
var DefaultBackOff = []time.Duration{10 * time.Second, 30 * time.Second, time.Minute, 5 * time.Minute,
	10 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour, 4 * time.Hour}

// maxResponseBody is how much of an answer is read: its status decides, its body is ignored.
const maxResponseBody = 4 << 10

func (c Config) withDefaults() Config {
	if c.MaxDeliver <= 0 {
		c.MaxDeliver = 10
	}
	if len(c.BackOff) == 0 {
		c.BackOff = DefaultBackOff
	}
	if c.HTTPTimeout <= 0 {
		c.HTTPTimeout = 10 * time.Second
	}
	if c.PollInterval <= 0 {
		c.PollInterval = 5 * time.Second
	}
	return c
}

// delay is the wait after failed attempt n (1-based).
func (c Config) delay(n uint64) time.Duration {
	i := min(int(max(n, 1))-1, len(c.BackOff)-1)
	return c.BackOff[i]
}

// ackWait is how long a delivery may go unanswered before the server hands it out again: only
// when the instance delivering it died, since a POST ends within HTTPTimeout.
func (c Config) ackWait() time.Duration { return c.HTTPTimeout + 30*time.Second }

// Dispatcher delivers every merchant's payment events to its endpoint. See the package doc.
// Run it on every instance: they share each merchant's consumer.
type Dispatcher struct {
	targets Targets
	js      jetstream.JetStream
	cfg     Config
	logger  *slog.Logger
	client  *http.Client

	mu        sync.Mutex
	endpoints map[domain.MerchantID]domain.NotificationEndpoint
	secrets   map[string][]byte // opened signing secrets by id
}

// New returns a Dispatcher delivering through js to the endpoints targets lists.
func New(targets Targets, js jetstream.JetStream, cfg Config, logger *slog.Logger) *Dispatcher {
	cfg = cfg.withDefaults()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	transport := cfg.Transport
	if transport == nil {
		transport = http.DefaultTransport
	}
	client := &http.Client{
		Transport: transport,
		Timeout:   cfg.HTTPTimeout,
		// A redirect is answered as it is: a 3xx is a failure, and the signed body goes only
		// where the merchant registered.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return &Dispatcher{targets: targets, js: js, cfg: cfg, logger: logger.With("component", "notify"), client: client,
		endpoints: map[domain.MerchantID]domain.NotificationEndpoint{}, secrets: map[string][]byte{}}
}

// NewFromConn is New on a NATS connection.
func NewFromConn(targets Targets, conn *nats.Conn, cfg Config, logger *slog.Logger) (*Dispatcher, error) {
	js, err := jetstream.New(conn)
	if err != nil {
		return nil, fmt.Errorf("notify: %w", err)
	}
	return New(targets, js, cfg, logger), nil
}

// worker is the delivery of one merchant's endpoint.
type worker struct {
	since  time.Time
	cancel context.CancelFunc
	done   chan struct{}
}

// Run delivers until ctx is done, then returns nil once every delivery in flight ended.
// Failures to reach NATS or the database are logged and retried.
func (d *Dispatcher) Run(ctx context.Context) error {
	backoff := natsbus.Backoff(time.Second, 30*time.Second)
	for {
		err := EnsureStreams(ctx, d.js, d.cfg)
		if err == nil {
			break
		}
		wait, _ := backoff.Next()
		d.logger.ErrorContext(ctx, "notification streams unavailable; retrying", "error", err, "retryIn", wait.String())
		if !sleep(ctx, wait) {
			return nil
		}
	}
	workers := map[domain.MerchantID]*worker{}
	defer func() {
		for _, w := range workers {
			w.cancel()
		}
		for _, w := range workers {
			<-w.done
		}
	}()
	for {
		d.sync(ctx, workers)
		if !sleep(ctx, d.cfg.PollInterval) {
			return nil
		}
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// sync starts a worker for each new endpoint and stops those of removed ones.
func (d *Dispatcher) sync(ctx context.Context, workers map[domain.MerchantID]*worker) {
	targets, err := d.targets.NotificationTargets(ctx)
	if err != nil {
		if ctx.Err() == nil {
			d.logger.ErrorContext(ctx, "notification endpoints unavailable", "error", err)
		}
		return
	}
	seen := map[domain.MerchantID]bool{}
	for _, t := range targets {
		seen[t.MerchantID] = true
		if err := d.remember(ctx, t); err != nil {
			d.logger.ErrorContext(ctx, "notification secret unavailable", "merchantId", t.MerchantID, "error", err)
			continue
		}
		w, ok := workers[t.MerchantID]
		if ok && w.since.Equal(t.Endpoint.Since) {
			continue
		}
		if ok { // removed and set again between two polls: start afresh
			d.stop(ctx, t.MerchantID, w)
			delete(workers, t.MerchantID)
		}
		w, err := d.start(ctx, t.MerchantID, t.Endpoint.Since)
		if err != nil {
			d.logger.ErrorContext(ctx, "notification consumer unavailable", "merchantId", t.MerchantID, "error", err)
			continue
		}
		workers[t.MerchantID] = w
	}
	for m, w := range workers {
		if !seen[m] {
			d.stop(ctx, m, w)
			delete(workers, m)
			d.mu.Lock()
			delete(d.endpoints, m)
			d.mu.Unlock()
		}
	}
}

// remember keeps t's endpoint and opens its secrets not opened yet.
func (d *Dispatcher) remember(ctx context.Context, t merchants.NotificationTarget) error {
	for _, id := range []string{t.Endpoint.SecretID, t.Endpoint.PreviousSecretID} {
		d.mu.Lock()
		_, ok := d.secrets[id]
		d.mu.Unlock()
		if id == "" || ok {
			continue
		}
		s, err := d.targets.NotificationSecret(ctx, t.MerchantID, id)
		if err != nil {
			return err
		}
		d.mu.Lock()
		d.secrets[id] = s
		d.mu.Unlock()
	}
	d.mu.Lock()
	d.endpoints[t.MerchantID] = t.Endpoint
	d.mu.Unlock()
	return nil
}

// start creates the merchant's consumers (or finds them, made by another instance) and pulls.
func (d *Dispatcher) start(ctx context.Context, m domain.MerchantID, since time.Time) (*worker, error) {
	name := ConsumerName(m)
	if c, err := d.js.Consumer(ctx, natsbus.StreamPayments, name); err == nil {
		if st := c.CachedInfo().Config.OptStartTime; st == nil || !st.Equal(since) {
			// A consumer of an earlier endpoint of this merchant: its start cannot be changed.
			if err := d.js.DeleteConsumer(ctx, natsbus.StreamPayments, name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
				return nil, err
			}
		}
	}
	main, err := d.js.CreateOrUpdateConsumer(ctx, natsbus.StreamPayments, jetstream.ConsumerConfig{
		Durable:       name,
		Description:   "merchant notifications of " + string(m),
		FilterSubject: natsbus.MerchantSubjects(m),
		DeliverPolicy: jetstream.DeliverByStartTimePolicy,
		OptStartTime:  &since,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       d.cfg.ackWait(),
		MaxDeliver:    d.cfg.MaxDeliver,
		MaxAckPending: 1,
	})
	if err != nil {
		return nil, err
	}
	redrive, err := d.js.CreateOrUpdateConsumer(ctx, StreamRedrive, jetstream.ConsumerConfig{
		Durable:       RedriveConsumerPrefix + string(m),
		Description:   "redriven dead letters of " + string(m),
		FilterSubject: RedriveRoot + "." + string(m) + ".>",
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       d.cfg.ackWait(),
		MaxDeliver:    -1,
		MaxAckPending: 1,
	})
	if err != nil {
		return nil, err
	}
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, cancel)
	w := &worker{since: since, cancel: func() { stop(); cancel() }, done: make(chan struct{})}
	var wg sync.WaitGroup
	wg.Go(func() { d.pull(wctx, m, main, false) })
	wg.Go(func() { d.pull(wctx, m, redrive, true) })
	go func() { wg.Wait(); close(w.done) }()
	d.logger.InfoContext(ctx, "notifications started", "merchantId", m, "since", since)
	return w, nil
}

// stop ends a worker and deletes its consumers: the endpoint is gone.
func (d *Dispatcher) stop(ctx context.Context, m domain.MerchantID, w *worker) {
	w.cancel()
	<-w.done
	for stream, name := range map[string]string{natsbus.StreamPayments: ConsumerName(m), StreamRedrive: RedriveConsumerPrefix + string(m)} {
		if err := d.js.DeleteConsumer(ctx, stream, name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			d.logger.WarnContext(ctx, "notification consumer not deleted", "merchantId", m, "consumer", name, "error", err)
		}
	}
	d.logger.InfoContext(ctx, "notifications stopped", "merchantId", m)
}

// pull delivers the consumer's messages one at a time until ctx ends.
func (d *Dispatcher) pull(ctx context.Context, m domain.MerchantID, c jetstream.Consumer, redrive bool) {
	for ctx.Err() == nil {
		fctx, cancel := context.WithTimeout(ctx, d.cfg.PollInterval)
		msg, err := c.Next(jetstream.FetchContext(fctx))
		cancel()
		switch {
		case ctx.Err() != nil:
			if msg != nil {
				_ = msg.Nak() // let another instance have it now
			}
			return
		case err == nil:
			d.deliver(ctx, m, msg, redrive)
		case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout), errors.Is(err, jetstream.ErrNoMessages):
		default:
			d.logger.WarnContext(ctx, "notification pull failed", "merchantId", m, "redrive", redrive, "error", err)
			sleep(ctx, d.cfg.PollInterval)
		}
	}
}

// signing returns the merchant's endpoint and the secrets that sign now.
func (d *Dispatcher) signing(m domain.MerchantID, now time.Time) (string, [][]byte, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	ep, ok := d.endpoints[m]
	if !ok {
		return "", nil, false
	}
	var keys [][]byte
	for _, id := range ep.SecretIDsAt(now) {
		if s, ok := d.secrets[id]; ok {
			keys = append(keys, s)
		}
	}
	return ep.URL, keys, len(keys) > 0
}

// deliver POSTs one message and acks or Naks it.
func (d *Dispatcher) deliver(ctx context.Context, m domain.MerchantID, msg jetstream.Msg, redrive bool) {
	meta, err := msg.Metadata()
	if err != nil {
		d.logger.ErrorContext(ctx, "notification without metadata", "merchantId", m, "error", err)
		_ = msg.NakWithDelay(d.cfg.delay(1))
		return
	}
	attempt := meta.NumDelivered
	e, err := natsbus.Decode(msg.Data())
	if err != nil {
		// Not an envelope this code can describe: never deliverable, so not retried.
		d.logger.ErrorContext(ctx, "notification dropped: not an event envelope", "merchantId", m, "streamSeq", meta.Sequence.Stream, "error", err)
		_ = msg.Term()
		return
	}
	log := d.logger.With("merchantId", m, "eventId", e.ID, "eventType", e.Type, "attempt", attempt, "redrive", redrive)
	url, keys, ok := d.signing(m, time.Now())
	if !ok {
		_ = msg.NakWithDelay(d.cfg.PollInterval) // removed meanwhile: its consumer goes soon
		return
	}
	status, err := d.post(ctx, url, keys, msg.Data(), e, attempt)
	if ctx.Err() != nil {
		_ = msg.Nak()
		return
	}
	if err == nil && status >= 200 && status < 300 {
		if redrive {
			id, perr := strconv.ParseUint(msg.Headers().Get(headerDeadLetter), 10, 64)
			if perr == nil {
				if err := deleteDeadLetter(ctx, d.js, id); err != nil {
					log.ErrorContext(ctx, "redriven notification delivered; its dead letter not removed", "deadLetter", id, "error", err)
				}
			}
		}
		if err := msg.DoubleAck(ctx); err != nil {
			log.WarnContext(ctx, "notification delivered; ack failed, it may be delivered again", "error", err)
		}
		return
	}
	if !redrive && attempt >= uint64(d.cfg.MaxDeliver) {
		log.ErrorContext(ctx, "notification failed for the last time: dead letter", "status", status, "error", err)
		_ = msg.Nak() // the server drops it from the consumer and publishes MAX_DELIVERIES
		return
	}
	wait := d.cfg.delay(attempt)
	log.WarnContext(ctx, "notification failed; retrying", "status", status, "error", err, "retryIn", wait.String())
	_ = msg.NakWithDelay(wait)
}

// post sends body to url and returns the answer's status.
func (d *Dispatcher) post(ctx context.Context, url string, keys [][]byte, body []byte, e natsbus.Event, attempt uint64) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "paymentledger-notify/1")
	req.Header.Set(HeaderEventID, e.ID.String())
	req.Header.Set(HeaderEventType, string(e.Type))
	req.Header.Set(HeaderAttempt, strconv.FormatUint(attempt, 10))
	req.Header.Set(HeaderSignature, Sign(keys, time.Now(), body))
	resp, err := d.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponseBody))
	return resp.StatusCode, nil
}
