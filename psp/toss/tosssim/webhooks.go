package tosssim

import (
	"bytes"
	"container/heap"
	"context"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// webhookRetryWaits are the waits before retries 1–7 after a failed attempt (toss-api.md
// §10.4), before Faults.TimeScale.
var webhookRetryWaits = [...]time.Duration{
	1 * time.Minute, 4 * time.Minute, 16 * time.Minute, 64 * time.Minute,
	256 * time.Minute, 1024 * time.Minute, 4096 * time.Minute,
}

const (
	defaultWebhookTimeout = 10 * time.Second
	// defaultReorderWindow bounds the random hold of Faults.WebhookReorder: wide enough to
	// swap two changes made by back-to-back API calls, short enough not to slow a test.
	defaultReorderWindow = 100 * time.Millisecond
	// duplicateDelayMin and duplicateDelayMax bound how long after the first attempt starts
	// the extra copy of Faults.WebhookDuplicateRate is sent.
	duplicateDelayMin = time.Millisecond
	duplicateDelayMax = 50 * time.Millisecond
	// maxConcurrentWebhookPosts bounds the sender's parallel POSTs, so a slow receiver makes
	// the queue wait rather than pile up goroutines.
	maxConcurrentWebhookPosts = 32
	// maxWebhookReplyBytes is how much of a receiver's answer is read (and discarded) so the
	// connection can be reused.
	maxWebhookReplyBytes = 64 << 10
)

// Webhook header names as Toss sends them (toss-api.md §10.3), lower case on the wire.
const (
	headerTransmissionID      = "tosspayments-webhook-transmission-id"
	headerTransmissionTime    = "tosspayments-webhook-transmission-time"
	headerTransmissionRetried = "tosspayments-webhook-transmission-retried-count"
)

// webhookCreatedAtLayout is the PAYMENT_STATUS_CHANGED createdAt: KST local time with
// microseconds and no offset (toss-api.md §5.5, §10.2).
const webhookCreatedAtLayout = "2006-01-02T15:04:05.000000"

type wireWebhook struct {
	EventType string      `json:"eventType"`
	CreatedAt string      `json:"createdAt"`
	Data      wirePayment `json:"data"`
}

// statusChanged queues a PAYMENT_STATUS_CHANGED webhook carrying p as it is now, so the
// delivery shows the payment at the time of the change even if it arrives after later ones.
// Callers hold s.mu, which also fixes the queue order to the order of the changes.
func (s *Simulator) statusChanged(p *payment) {
	if s.hooks == nil {
		return
	}
	body, err := marshal(wireWebhook{
		EventType: "PAYMENT_STATUS_CHANGED",
		CreatedAt: s.cfg.Now().In(kst).Format(webhookCreatedAtLayout),
		Data:      s.render(p),
	})
	if err != nil {
		return // render output always marshals; nothing sensible to send otherwise
	}
	s.hooks.enqueue(p.key, body)
}

// webhook is one PAYMENT_STATUS_CHANGED event: one transmission id, however many attempts.
type webhook struct {
	id, paymentKey string
	body           []byte
	// next is the same payment's following webhook, waiting for this one's first attempt to
	// finish (only without Faults.WebhookReorder). Guarded by webhookSender.mu.
	next *webhook
}

// sendItem is one scheduled POST of a webhook.
type sendItem struct {
	due     time.Time
	seq     uint64 // ties on due go in queue order
	wh      *webhook
	retried int  // the retried-count header of this attempt
	dup     bool // an extra copy: sent once, never retried, no effect on the webhook's state
}

type sendQueue []*sendItem

func (q sendQueue) Len() int { return len(q) }
func (q sendQueue) Less(i, j int) bool {
	if c := q[i].due.Compare(q[j].due); c != 0 {
		return c < 0
	}
	return q[i].seq < q[j].seq
}
func (q sendQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *sendQueue) Push(x any)   { *q = append(*q, x.(*sendItem)) }
func (q *sendQueue) Pop() any {
	old := *q
	it := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	return it
}

// webhookSender delivers webhooks in the background: one scheduler goroutine pops due
// attempts from a time-ordered queue and POSTs each in its own goroutine (at most
// maxConcurrentWebhookPosts at once); a failed attempt puts the next one back on the queue
// after the scaled §10.4 wait. It never takes Simulator.mu, so enqueue may be called with it
// held.
type webhookSender struct {
	url           string
	client        *http.Client
	timeout       time.Duration
	scale         float64
	dupRate       float64
	reorder       bool
	reorderWindow time.Duration // tests widen it
	rnd           *lockedRand
	now           func() time.Time // the simulator's clock, for transmission-time

	ctx  context.Context // canceled by close; ends waits and in-flight POSTs
	stop context.CancelFunc
	wg   sync.WaitGroup
	wake chan struct{}
	sem  chan struct{}

	mu     sync.Mutex // guards queue, seq, lanes, closed and webhook.next
	queue  sendQueue
	seq    uint64
	lanes  map[string]*webhook // per paymentKey: the newest webhook whose first attempt is not done
	closed bool

	sent, deliveries, failures, pending atomic.Int64
}

func newWebhookSender(f Faults, rnd *lockedRand, now func() time.Time) *webhookSender {
	ctx, stop := context.WithCancel(context.Background())
	w := &webhookSender{
		url:           f.WebhookURL,
		client:        f.WebhookClient,
		timeout:       f.WebhookTimeout,
		scale:         f.TimeScale,
		dupRate:       f.WebhookDuplicateRate,
		reorder:       f.WebhookReorder,
		reorderWindow: defaultReorderWindow,
		rnd:           rnd,
		now:           now,
		ctx:           ctx,
		stop:          stop,
		wake:          make(chan struct{}, 1),
		sem:           make(chan struct{}, maxConcurrentWebhookPosts),
		lanes:         map[string]*webhook{},
	}
	w.wg.Add(1)
	go w.loop()
	return w
}

// enqueue schedules the first attempt of a new webhook for paymentKey.
func (w *webhookSender) enqueue(paymentKey string, body []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return
	}
	wh := &webhook{id: "whtrans_" + randomAlnum(24), paymentKey: paymentKey, body: body}
	w.sent.Add(1)
	w.pending.Add(1)
	now := time.Now()
	switch {
	case w.reorder:
		w.pushLocked(&sendItem{due: now.Add(w.rnd.between(0, w.reorderWindow)), wh: wh})
	case w.lanes[paymentKey] != nil:
		w.lanes[paymentKey].next = wh // released when the previous first attempt finishes
		w.lanes[paymentKey] = wh
	default:
		w.lanes[paymentKey] = wh
		w.pushLocked(&sendItem{due: now, wh: wh})
	}
}

// pushLocked queues it and wakes the scheduler. Callers hold w.mu.
func (w *webhookSender) pushLocked(it *sendItem) {
	w.seq++
	it.seq = w.seq
	heap.Push(&w.queue, it)
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *webhookSender) loop() {
	defer w.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		w.mu.Lock()
		now := time.Now()
		var due []*sendItem
		for len(w.queue) > 0 && !w.queue[0].due.After(now) {
			due = append(due, heap.Pop(&w.queue).(*sendItem))
		}
		wait := time.Hour
		if len(w.queue) > 0 {
			wait = w.queue[0].due.Sub(now)
		}
		w.mu.Unlock()

		for _, it := range due {
			select {
			case w.sem <- struct{}{}:
			case <-w.ctx.Done():
				return
			}
			w.wg.Add(1)
			go w.attempt(it)
		}
		if len(due) > 0 {
			continue // starting them took time; look at the queue again
		}
		timer.Reset(wait)
		select {
		case <-w.ctx.Done():
			return
		case <-w.wake:
		case <-timer.C:
		}
	}
}

// attempt POSTs one scheduled item and decides what follows it.
func (w *webhookSender) attempt(it *sendItem) {
	defer w.wg.Done()
	defer func() { <-w.sem }()
	first := it.retried == 0 && !it.dup
	if first && w.rnd.chance(w.dupRate) {
		w.mu.Lock()
		w.pushLocked(&sendItem{due: time.Now().Add(w.rnd.between(duplicateDelayMin, duplicateDelayMax)), wh: it.wh, dup: true})
		w.mu.Unlock()
	}
	ok := w.post(it.wh, it.retried)
	if w.ctx.Err() != nil {
		return // closed while sending: the answer no longer matters
	}
	w.deliveries.Add(1)
	if it.dup {
		return
	}

	w.mu.Lock()
	defer w.mu.Unlock()
	now := time.Now()
	if first {
		if next := it.wh.next; next != nil {
			w.pushLocked(&sendItem{due: now, wh: next})
		} else if w.lanes[it.wh.paymentKey] == it.wh {
			delete(w.lanes, it.wh.paymentKey)
		}
	}
	switch {
	case ok:
		w.pending.Add(-1)
	case it.retried >= len(webhookRetryWaits):
		w.failures.Add(1) // Toss's "실패": the first attempt and all 7 retries failed
		w.pending.Add(-1)
	default:
		wait := time.Duration(float64(webhookRetryWaits[it.retried]) * w.scale)
		w.pushLocked(&sendItem{due: now.Add(wait), wh: it.wh, retried: it.retried + 1})
	}
}

// post makes one delivery. Only a 200 within the timeout is a success (toss-api.md §10.4).
func (w *webhookSender) post(wh *webhook, retried int) bool {
	ctx, cancel := context.WithTimeout(w.ctx, w.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(wh.body))
	if err != nil {
		return false
	}
	// Assigned directly so the names go out in Toss's lower case.
	req.Header["Content-Type"] = []string{"application/json"}
	req.Header[headerTransmissionID] = []string{wh.id}
	req.Header[headerTransmissionTime] = []string{wireTime(w.now())}
	req.Header[headerTransmissionRetried] = []string{strconv.Itoa(retried)}
	resp, err := w.client.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxWebhookReplyBytes))
	return resp.StatusCode == http.StatusOK
}

// close stops the scheduler, cancels waits and in-flight POSTs, and waits for them. Webhooks
// not yet delivered are dropped; later changes queue nothing.
func (w *webhookSender) close() {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	w.stop()
	w.wg.Wait()
}
