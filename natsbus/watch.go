package natsbus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/paymentledger/ledger/domain"
)

// Watcher follows single orders on the PAYMENTS stream for live readers (the API's Server-Sent
// Events). It is safe for concurrent use; each Watch has its own consumer.
type Watcher struct {
	js jetstream.JetStream
}

// NewWatcher returns a Watcher reading through js.
func NewWatcher(js jetstream.JetStream) *Watcher { return &Watcher{js: js} }

// Watch is the package-level Watch on w's connection.
func (w *Watcher) Watch(ctx context.Context, m domain.MerchantID, o domain.OrderID, afterVersion int64) (*Subscription, error) {
	return Watch(ctx, w.js, m, o, afterVersion)
}

// Subscription is one order being watched. Read C until it is closed, then ask Err why.
type Subscription struct {
	// C delivers the order's events with StreamVersion > afterVersion, in stream order. It is
	// unbuffered: an event is taken from NATS only as fast as the reader takes it from C.
	C   <-chan Event
	err error
	// done is closed after err is set and C is closed.
	done chan struct{}
}

// Err is nil while C is open. After C is closed it is nil if the Watch's context ended, and
// otherwise why the subscription failed (NATS gone for longer than the consumer's resets, the
// stream deleted, or a message that is not this package's envelope of this order).
func (s *Subscription) Err() error {
	select {
	case <-s.done:
		return s.err
	default:
		return nil
	}
}

// watchResets is how many times a watch recreates its consumer in a row (NATS reconnecting, the
// server restarted) before it gives up and reports the failure: a live reader would rather end
// and reconnect than hang on a bus that is gone.
const watchResets = 3

// Watch follows order o of merchant m: an ordered JetStream consumer on PAYMENTS filtered to
// OrderSubjects(m, o), delivering from the first message of the order (an order has few), so
// every event the relay has published or will publish reaches C, whenever Watch was called
// relative to the append: a reader that reads the order's state and then watches misses
// nothing. Events with StreamVersion <= afterVersion are skipped, as are repeats of a version
// already delivered (a relay that published an event twice outside the duplicate window); the
// versions on C therefore increase strictly. They can have gaps only where the stream lost
// messages (MaxAge): a reader that must see every version checks for them.
//
// Watch returns an error if the consumer cannot be created. Afterwards the subscription runs
// until ctx ends, when C is closed and Err is nil, or until it fails, when C is closed and Err
// says why. It never blocks longer than ctx on a reader that stopped reading.
func Watch(ctx context.Context, js jetstream.JetStream, m domain.MerchantID, o domain.OrderID, afterVersion int64) (*Subscription, error) {
	cons, err := js.OrderedConsumer(ctx, StreamPayments, jetstream.OrderedConsumerConfig{
		FilterSubjects:    []string{OrderSubjects(m, o)},
		DeliverPolicy:     jetstream.DeliverAllPolicy,
		InactiveThreshold: time.Minute, // the server drops the consumer of a process that died
		MaxResetAttempts:  watchResets,
	})
	if err != nil {
		return nil, fmt.Errorf("natsbus: watch %s/%s: %w", m, o, err)
	}
	// Few messages per order: a small pull batch keeps many idle watches cheap. The heartbeat
	// bounds how long a dead server goes unnoticed (two missed, then the resets).
	it, err := cons.Messages(jetstream.PullMaxMessages(16), jetstream.PullHeartbeat(5*time.Second))
	if err != nil {
		return nil, fmt.Errorf("natsbus: watch %s/%s: %w", m, o, err)
	}
	c := make(chan Event)
	s := &Subscription{C: c, done: make(chan struct{})}
	stopped := make(chan struct{})
	go func() {
		// Next blocks without a context: stopping the iterator is what ends it.
		select {
		case <-ctx.Done():
		case <-stopped:
		}
		it.Stop()
	}()
	go func() {
		// In this order (defers run last first): err is set and done closed before C closes,
		// so a reader that sees C closed reads Err's verdict, never a nil for "not done yet".
		defer close(c)
		defer close(s.done)
		defer close(stopped)
		s.err = follow(ctx, it, m, o, afterVersion, c)
	}()
	return s, nil
}

// follow delivers the messages of it of order o to c until ctx ends (nil) or a failure.
func follow(ctx context.Context, it jetstream.MessagesContext, m domain.MerchantID, o domain.OrderID, last int64, c chan<- Event) error {
	for {
		msg, err := it.Next()
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return fmt.Errorf("natsbus: watch %s/%s: the consumer closed", m, o)
			}
			return fmt.Errorf("natsbus: watch %s/%s: %w", m, o, err)
		}
		e, err := Decode(msg.Data())
		if err != nil {
			return fmt.Errorf("natsbus: watch %s/%s: message on %s: %w", m, o, msg.Subject(), err)
		}
		if e.MerchantID != m || e.OrderID != o {
			return fmt.Errorf("natsbus: watch %s/%s: message on %s is an event of %s/%s", m, o, msg.Subject(), e.MerchantID, e.OrderID)
		}
		if e.StreamVersion <= last {
			continue
		}
		select {
		case c <- e:
			last = e.StreamVersion
		case <-ctx.Done():
			return nil
		}
	}
}
