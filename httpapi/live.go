package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/mux"

	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/natsbus"
	"github.com/paymentledger/ledger/queries"
)

// LiveSource follows one order's events as the relay publishes them, from any instance.
// *natsbus.Watcher is the implementation; its Watch documents the contract the stream relies
// on: every event after afterVersion, in increasing version order, whenever Watch is called
// relative to the append; C closed when ctx ends (Err nil) or the bus fails (Err says why).
type LiveSource interface {
	Watch(ctx context.Context, m domain.MerchantID, o domain.OrderID, afterVersion int64) (*natsbus.Subscription, error)
}

var _ LiveSource = (*natsbus.Watcher)(nil)

// LiveConfig tunes the live status streams; zero values take the defaults.
type LiveConfig struct {
	// Heartbeat is how often an idle stream sends a comment, so that proxies and load
	// balancers do not close it (SSE_HEARTBEAT; default 15s).
	Heartbeat time.Duration
	// MaxStreamsPerKey bounds the streams one API key holds open on this instance (default 20);
	// one more is 429. A stream holds a connection, a goroutine and a NATS consumer: without a
	// bound, one key could hold them all.
	MaxStreamsPerKey int
}

// Defaults of LiveConfig, and the fixed parts of the stream.
const (
	defaultHeartbeat        = 15 * time.Second
	defaultMaxStreamsPerKey = 20
	// liveRetry is the reconnection delay the stream suggests to EventSource clients.
	liveRetry = 3 * time.Second
	// liveWriteTimeout bounds each write of a stream: a client that stops reading for this long
	// loses its stream (the server's WriteTimeout, meant for whole answers, is lifted).
	liveWriteTimeout = 30 * time.Second
)

// WithLive serves the live status of a payment as Server-Sent Events, fed by src (NATS, so an
// order changed through any instance shows on a stream held by any other):
//
//	GET /api/v1/payments/{orderId}/events     payments:read, like GET /api/v1/payments/{orderId}
//
// Another merchant's order, or a missing one, is 404 with the usual error JSON, decided before
// the stream starts. Then, as text/event-stream:
//
//	retry: 3000                               the reconnection delay EventSource should use
//	event: payment                            the current state, first
//	id: <version of that state>
//	data: <the JSON of GET /api/v1/payments/{orderId}>
//
//	event: <EventType>                        each later event, in order, once
//	id: <its streamVersion>
//	data: {"event":<natsbus.Event envelope>,"status":"<the payment's status after it>"}
//
//	: ping                                    every Heartbeat while nothing else is sent
//
// The status after each event is the domain's fold (domain.Payment.Apply) of the events so far,
// so it is the status as of that event, not as of when it is sent.
//
// Resume: Last-Event-ID: n (the header EventSource sends on reconnecting; clients that cannot
// set headers pass ?lastEventId=n, and the header wins when both are sent, since a browser
// reconnects with the original URL and a newer header) sends no payment event, only the events
// after version n, then continues. n must be a whole number from 0 to the order's current
// version; anything else is 400 INVALID_LAST_EVENT_ID. If the bus no longer holds an event
// after n (it keeps them NATS_MAX_AGE), the stream sends the current state as a payment event
// in its place and continues from there.
//
// The stream ends when the client goes away, when the server shuts down, or when the bus fails
// (the client reconnects with Last-Event-ID and misses nothing). A key holding
// MaxStreamsPerKey streams on this instance gets 429 RATE_LIMITED for another.
func (s *Server) WithLive(src LiveSource, cfg LiveConfig) *Server {
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = defaultHeartbeat
	}
	if cfg.MaxStreamsPerKey <= 0 {
		cfg.MaxStreamsPerKey = defaultMaxStreamsPerKey
	}
	s.live, s.liveCfg = src, cfg
	s.streams = &streamCounts{open: map[domain.APIKeyID]int{}}
	s.liveEnd = make(chan struct{})
	s.api(http.MethodGet, "/api/v1/payments/{orderId}/events", domain.ScopePaymentsRead, s.paymentEvents)
	return s
}

// EndLiveStreams ends every live status stream, now and later. http.Server.Shutdown waits for
// handlers to return and a stream's never would: paymentd registers this with
// RegisterOnShutdown. Clients reconnect to another instance with Last-Event-ID.
func (s *Server) EndLiveStreams() {
	if s.liveEnd != nil {
		s.liveEndOnce.Do(func() { close(s.liveEnd) })
	}
}

// LiveStreams is the number of live status streams open on this server.
func (s *Server) LiveStreams() int {
	if s.streams == nil {
		return 0
	}
	return s.streams.total()
}

// streamCounts counts each key's open streams on this instance. The bound is per process by
// design: it protects this process's connections and goroutines.
type streamCounts struct {
	mu   sync.Mutex
	open map[domain.APIKeyID]int
}

// acquire takes one of key's max streams; release gives it back.
func (c *streamCounts) acquire(key domain.APIKeyID, max int) (release func(), ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.open[key] >= max {
		return nil, false
	}
	c.open[key]++
	var once sync.Once
	return func() {
		once.Do(func() {
			c.mu.Lock()
			defer c.mu.Unlock()
			if c.open[key]--; c.open[key] <= 0 {
				delete(c.open, key)
			}
		})
	}, true
}

func (c *streamCounts) total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, v := range c.open {
		n += v
	}
	return n
}

// liveEvent is the data of every event after the first.
type liveEvent struct {
	Event  natsbus.Event `json:"event"`
	Status string        `json:"status"`
}

// lastEventID reads the resume point: the Last-Event-ID header, else the lastEventId query
// parameter. ok is false when neither is given.
func lastEventID(r *http.Request) (n int64, ok bool, err error) {
	v, from := r.Header.Get("Last-Event-ID"), "Last-Event-ID"
	if v == "" {
		params := r.URL.Query()
		if !params.Has("lastEventId") {
			return 0, false, nil
		}
		v, from = params.Get("lastEventId"), "lastEventId"
	}
	n, err = strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, false, badRequest("INVALID_LAST_EVENT_ID", "%s must be the id of an event of this stream (a whole number), got %q", from, truncate(v, 40))
	}
	return n, true, nil
}

// paymentEvents is GET /api/v1/payments/{orderId}/events: see WithLive.
func (s *Server) paymentEvents(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := mux.Vars(r)["orderId"]
	noteOrder(r, domain.OrderID(id))
	p := principalOf(ctx)
	after, resume, err := lastEventID(r)
	if err != nil {
		writeError(w, r, s.logger, err)
		return
	}
	release, ok := s.streams.acquire(p.KeyID, s.liveCfg.MaxStreamsPerKey)
	if !ok {
		s.auth.OnRateLimited("live_streams")
		writeError(w, r, s.logger, &apiError{Status: http.StatusTooManyRequests, Code: "RATE_LIMITED",
			Message: fmt.Sprintf("this API key already holds %d live streams on this server; close one first", s.liveCfg.MaxStreamsPerKey)})
		return
	}
	defer release()

	// The read decides 404 before anything is streamed. The watch that follows delivers the
	// order from its first message on, so an event appended between the read and the watch
	// is not missed; versions up to the read's are skipped, so none is sent twice.
	pay, err := s.queries.Payment(ctx, p.Merchant, id)
	if err != nil {
		writeError(w, r, s.logger, err)
		return
	}
	current := currentVersion(pay)
	if resume && after > current {
		writeError(w, r, s.logger, badRequest("INVALID_LAST_EVENT_ID",
			"Last-Event-ID %d is past this order's current version %d", after, current))
		return
	}
	from := current
	if resume {
		from = after
	}
	state, err := foldHistory(pay.History, from)
	if err != nil {
		writeError(w, r, s.logger, err)
		return
	}
	order := domain.OrderID(pay.OrderID)
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	sub, err := s.live.Watch(watchCtx, p.Merchant, order, from)
	if err != nil {
		s.logger.ErrorContext(ctx, "live status: watch failed", "orderId", order, "error", err)
		writeError(w, r, s.logger, &apiError{Status: http.StatusServiceUnavailable, Code: "UNAVAILABLE",
			Message: "live status is unavailable; try again"})
		return
	}

	st := newSSE(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx would buffer the stream otherwise
	w.WriteHeader(http.StatusOK)
	if err := st.write(fmt.Sprintf("retry: %d\n\n", liveRetry.Milliseconds())); err != nil {
		return
	}
	last := from
	if !resume {
		if err := st.event("payment", current, pay); err != nil {
			return
		}
	}

	heartbeat := time.NewTicker(s.liveCfg.Heartbeat)
	defer heartbeat.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.liveEnd:
			return
		case <-heartbeat.C:
			if err := st.write(": ping\n\n"); err != nil {
				return
			}
		case e, ok := <-sub.C:
			if !ok {
				if err := sub.Err(); err != nil {
					s.logger.WarnContext(ctx, "live status: the bus failed; the stream ends", "orderId", order, "error", err)
				}
				return
			}
			if e.StreamVersion <= last {
				continue
			}
			if e.StreamVersion != last+1 {
				// The bus no longer has the events in between: send the state instead.
				if last, state, err = s.resync(ctx, st, p.Merchant, id); err != nil {
					s.logger.WarnContext(ctx, "live status: resync failed; the stream ends", "orderId", order, "error", err)
					return
				}
				if e.StreamVersion <= last {
					continue
				}
			}
			ev, err := domain.UnmarshalEvent(string(e.Type), e.SchemaVersion, e.Data)
			if err == nil {
				err = state.Apply(ev)
			}
			if err != nil {
				s.logger.ErrorContext(ctx, "live status: an event cannot be folded; the stream ends", "orderId", order, "version", e.StreamVersion, "error", err)
				return
			}
			e.RecordedAt = e.RecordedAt.In(domain.KST)
			if err := st.event(string(e.Type), e.StreamVersion, liveEvent{Event: e, Status: string(state.Status)}); err != nil {
				return
			}
			last = e.StreamVersion
			heartbeat.Reset(s.liveCfg.Heartbeat)
		}
	}
}

// resync sends the current state as a payment event and returns its version and fold.
func (s *Server) resync(ctx context.Context, st *sse, m domain.MerchantID, id string) (int64, domain.Payment, error) {
	pay, err := s.queries.Payment(ctx, m, id)
	if err != nil {
		return 0, domain.Payment{}, err
	}
	v := currentVersion(pay)
	state, err := foldHistory(pay.History, v)
	if err != nil {
		return 0, domain.Payment{}, err
	}
	return v, state, st.event("payment", v, pay)
}

// currentVersion is the stream version of a payment as read: its last event's.
func currentVersion(p queries.Payment) int64 {
	if len(p.History) == 0 {
		return 0
	}
	return p.History[len(p.History)-1].Version
}

// foldHistory rebuilds the payment as of version upTo from the history of a single-payment
// read, which holds every event at the current schema version (the read refuses others).
func foldHistory(history []queries.HistoryEntry, upTo int64) (domain.Payment, error) {
	var p domain.Payment
	for _, h := range history {
		if h.Version > upTo {
			break
		}
		e, err := domain.UnmarshalEvent(h.Type, domain.SchemaVersion, h.Data)
		if err != nil {
			return domain.Payment{}, fmt.Errorf("live status: v%d: %w", h.Version, err)
		}
		if err := p.Apply(e); err != nil {
			return domain.Payment{}, fmt.Errorf("live status: v%d: %w", h.Version, err)
		}
	}
	return p, nil
}

// sse writes a stream's frames, each with its own write deadline, and flushes each.
type sse struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

func newSSE(w http.ResponseWriter) *sse {
	rc := http.NewResponseController(w)
	// The server's ReadTimeout would end the request's context mid-stream (net/http's
	// background read times out): a stream reads nothing after its head.
	_ = rc.SetReadDeadline(time.Time{})
	return &sse{w: w, rc: rc}
}

// write sends text and flushes it. An error means the client is gone or too slow.
func (s *sse) write(text string) error {
	if err := s.rc.SetWriteDeadline(time.Now().Add(liveWriteTimeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	if _, err := s.w.Write([]byte(text)); err != nil {
		return err
	}
	return s.rc.Flush()
}

// event sends one event. JSON holds no raw newline, so data is one line.
func (s *sse) event(name string, id int64, data any) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "event: %s\nid: %d\ndata: ", name, id)
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(data); err != nil { // ends with the newline that ends the data line
		return err
	}
	b.WriteString("\n")
	return s.write(b.String())
}
