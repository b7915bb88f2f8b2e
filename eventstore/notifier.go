package eventstore

import (
	"context"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/sethvargo/go-retry"
)

// notifyChannel is the PostgreSQL channel every append notifies in its transaction; PostgreSQL
// delivers the notification only if and when that transaction commits.
const notifyChannel = "eventstore_appended"

// notifierAppName names the listening connection in pg_stat_activity.
const notifierAppName = "eventstore-notifier"

// notifier turns the appends' notifications into wake-ups for the subscribers of one store. It
// holds ONE dedicated connection, whatever the number of subscribers, so subscribers cost no
// connection while they wait. The connection is opened when the first subscriber arrives and
// closed when the last one leaves (so an idle store holds no connection and a pool can be closed
// once its subscribers are gone).
//
// A wake-up only says "something may have changed, read again"; subscribers never trust it to
// carry data or to arrive at all: they read the log, and they re-read on a timer too.
type notifier struct {
	connConfig *pgx.ConnConfig

	mu      sync.Mutex
	refs    int
	wakeCh  chan struct{} // closed (and replaced) at every wake-up
	stop    context.CancelFunc
	stopped chan struct{} // closed when the listening goroutine has returned
}

func newNotifier(cfg *pgx.ConnConfig) *notifier {
	cfg = cfg.Copy()
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	cfg.RuntimeParams["application_name"] = notifierAppName
	return &notifier{connConfig: cfg, wakeCh: make(chan struct{})}
}

// acquire registers a subscriber, starting the listener if it is the first.
func (n *notifier) acquire() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.refs++
	if n.refs == 1 {
		ctx, cancel := context.WithCancel(context.Background())
		n.stop = cancel
		n.stopped = make(chan struct{})
		go n.run(ctx, n.stopped)
	}
}

// release unregisters a subscriber; the last one stops the listener and waits for its
// connection to close.
func (n *notifier) release() {
	n.mu.Lock()
	n.refs--
	if n.refs > 0 {
		n.mu.Unlock()
		return
	}
	stop, stopped := n.stop, n.stopped
	n.stop, n.stopped = nil, nil
	n.mu.Unlock()
	stop()
	<-stopped
}

// wake returns a channel closed at the next wake-up. A subscriber takes it BEFORE reading the
// log, so a notification that arrives while it reads is not lost.
func (n *notifier) wake() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.wakeCh
}

func (n *notifier) broadcast() {
	n.mu.Lock()
	defer n.mu.Unlock()
	close(n.wakeCh)
	n.wakeCh = make(chan struct{})
}

// run listens until ctx ends, reconnecting with back-off after any error.
func (n *notifier) run(ctx context.Context, stopped chan<- struct{}) {
	defer close(stopped)
	var backoff retry.Backoff
	for {
		if n.listen(ctx) || backoff == nil {
			// It was connected: the next failure is a new one.
			backoff = retry.WithCappedDuration(5*time.Second, retry.NewExponential(100*time.Millisecond))
		}
		if ctx.Err() != nil {
			return
		}
		delay, _ := backoff.Next()
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// listen connects, listens and broadcasts every notification until an error or ctx ends. It
// reports whether LISTEN succeeded.
func (n *notifier) listen(ctx context.Context) (listened bool) {
	conn, err := pgx.ConnectConfig(ctx, n.connConfig)
	if err != nil {
		return false
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		conn.Close(closeCtx) //nolint:errcheck // the connection is being discarded either way
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+notifyChannel); err != nil {
		return false
	}
	// Appends committed before LISTEN (at start, or while reconnecting) sent notifications
	// nobody heard: wake every subscriber so that it reads the log again.
	n.broadcast()
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return true
		}
		n.broadcast()
	}
}
