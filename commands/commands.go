// Package commands holds one handler per use case of the command side: load the payment's
// stream, decide with the domain, append with the expected version, and call the PSP outside any
// database transaction. Handlers take and return plain Go values; HTTP lives in httpapi.
//
// Every use case a merchant asks for names the merchant: a payment of another merchant is not
// found, exactly as if it did not exist. Each PSP call is made with the payment's merchant's own
// Toss client (PSPFor).
package commands

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/eventstore"
	"github.com/paymentledger/ledger/psp/toss"
)

// EventStore is what the handlers need of the event store. ReadVerified hands out a stream only
// after checking it against its recorded head (see eventstore.Postgres.ReadVerified): the
// handlers decide on history nobody edited.
type EventStore interface {
	Append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events []eventstore.EventData) (eventstore.AppendResult, error)
	ReadVerified(ctx context.Context, stream string) ([]eventstore.RecordedEvent, error)
}

// PSP is what the handlers need of the payment service provider.
type PSP interface {
	Confirm(ctx context.Context, req toss.ConfirmRequest, idempotencyKey string) (*toss.Payment, error)
	GetPaymentByOrderID(ctx context.Context, orderID string) (*toss.Payment, error)
	Cancel(ctx context.Context, paymentKey string, req toss.CancelRequest, idempotencyKey string) (*toss.Payment, error)
}

var (
	_ EventStore = (*eventstore.Postgres)(nil)
	_ PSP        = (*toss.Client)(nil)
)

// PSPFor returns the PSP client that acts for merchant m, with m's own Toss secret key. It
// returns domain.ErrMerchantNotConfigured when m has no key. It must be safe for concurrent use.
type PSPFor func(ctx context.Context, m domain.MerchantID) (PSP, error)

// OnePSP serves every merchant with the same PSP client: for tests and tools that talk to a
// simulator that accepts any key.
func OnePSP(p PSP) PSPFor {
	return func(context.Context, domain.MerchantID) (PSP, error) { return p, nil }
}

// Config holds the handlers' settings.
type Config struct {
	CheckoutTTL time.Duration // default domain.DefaultCheckoutTTL
	// PSPTimeout bounds one PSP call. Calls run on a context detached from the caller's, so a
	// client that hangs up cannot leave a payment EXECUTING with nothing recorded.
	PSPTimeout time.Duration // default 8s
	// Retry bounds the in-request retries of a PSP call whose outcome is unknown.
	Retry RetryPolicy
}

// RetryPolicy bounds the retries of one PSP call: at most MaxAttempts calls, all within Budget,
// with exponential backoff from BaseDelay capped at MaxDelay and full jitter. Every retry uses
// the same idempotency key, so a retry can never make a second charge.
type RetryPolicy struct {
	MaxAttempts int           // default 4
	Budget      time.Duration // default 20s: the confirm request ends in bounded time
	BaseDelay   time.Duration // default 100ms
	MaxDelay    time.Duration // default 2s
}

func (r RetryPolicy) withDefaults() RetryPolicy {
	if r.MaxAttempts <= 0 {
		r.MaxAttempts = 4
	}
	if r.Budget <= 0 {
		r.Budget = 20 * time.Second
	}
	if r.BaseDelay <= 0 {
		r.BaseDelay = 100 * time.Millisecond
	}
	if r.MaxDelay <= 0 {
		r.MaxDelay = 2 * time.Second
	}
	return r
}

// Service runs the command handlers. It is safe for concurrent use.
type Service struct {
	store  EventStore
	psps   PSPFor
	cfg    Config
	now    func() time.Time
	logger *slog.Logger
}

// New returns a Service. psps gives each merchant its PSP client; now is the clock (paymentd
// passes time.Now in domain.KST, so recorded times read as Toss writes them).
func New(store EventStore, psps PSPFor, cfg Config, now func() time.Time, logger *slog.Logger) (*Service, error) {
	if psps == nil {
		return nil, errors.New("commands: a PSP directory is required")
	}
	if cfg.CheckoutTTL <= 0 {
		cfg.CheckoutTTL = domain.DefaultCheckoutTTL
	}
	if cfg.PSPTimeout <= 0 {
		cfg.PSPTimeout = 8 * time.Second
	}
	cfg.Retry = cfg.Retry.withDefaults()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Service{store: store, psps: psps, cfg: cfg, now: now, logger: logger}, nil
}

// pspOf returns the PSP client of the payment's merchant.
func (s *Service) pspOf(ctx context.Context, p domain.Payment) (PSP, error) {
	psp, err := s.psps(ctx, p.MerchantID)
	if err != nil {
		return nil, fmt.Errorf("PSP of merchant %s: %w", p.MerchantID, err)
	}
	return psp, nil
}

// checkMerchant validates the merchant a caller acts for.
func checkMerchant(m domain.MerchantID) error {
	if m == "" {
		return domain.Errorf(domain.ErrInvalidInput, "a merchant is required")
	}
	_, err := domain.ParseMerchantID(string(m))
	return err
}

// load reads a payment's stream and folds it. A missing stream is ErrPaymentNotFound.
func (s *Service) load(ctx context.Context, id domain.OrderID) (domain.Payment, []eventstore.RecordedEvent, error) {
	if _, err := domain.ParseOrderID(string(id)); err != nil {
		return domain.Payment{}, nil, notFound(id) // no payment can have it; the store need not be asked
	}
	recs, err := s.store.ReadVerified(ctx, domain.StreamName(id))
	if errors.Is(err, eventstore.ErrStreamNotFound) {
		return domain.Payment{}, nil, notFound(id)
	}
	if errors.Is(err, eventstore.ErrChainBroken) {
		s.logger.ErrorContext(ctx, "a payment's stored history failed verification; no command acts on it", "orderId", id, "error", err)
		return domain.Payment{}, nil, domain.Errorf(domain.ErrHistoryBroken,
			"the stored history of order %s failed verification; it is flagged for review and nothing acts on it until a person repairs it", id)
	}
	if err != nil {
		return domain.Payment{}, nil, fmt.Errorf("load %s: %w", id, err)
	}
	events, err := DecodeEvents(recs)
	if err != nil {
		return domain.Payment{}, nil, fmt.Errorf("load %s: %w", id, err)
	}
	p, err := domain.Rebuild(events)
	if err != nil {
		return domain.Payment{}, nil, fmt.Errorf("load %s: %w", id, err)
	}
	return p, recs, nil
}

func notFound(id domain.OrderID) error {
	return domain.Errorf(domain.ErrPaymentNotFound, "no payment with orderId %s", truncate(string(id), 64))
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// DecodeEvents turns stored events into domain events.
func DecodeEvents(recs []eventstore.RecordedEvent) ([]domain.Event, error) {
	events := make([]domain.Event, 0, len(recs))
	for _, r := range recs {
		e, err := domain.UnmarshalEvent(r.Type, r.SchemaVersion, r.Data)
		if err != nil {
			return nil, fmt.Errorf("%s v%d: %w", r.StreamID, r.Version, err)
		}
		events = append(events, e)
	}
	return events, nil
}

// Encode turns domain events into events to append, all with the same metadata (the merchant
// of each event is set from its header).
func Encode(events []domain.Event, meta eventstore.Metadata) ([]eventstore.EventData, error) {
	out := make([]eventstore.EventData, 0, len(events))
	for _, e := range events {
		data, err := domain.MarshalEvent(e)
		if err != nil {
			return nil, err
		}
		m := meta
		m.MerchantID = string(e.Header().MerchantID)
		out = append(out, eventstore.EventData{
			ID:            uuid.New(),
			Type:          string(e.EventType()),
			SchemaVersion: domain.SchemaVersion,
			Data:          data,
			Metadata:      m,
		})
	}
	return out, nil
}

// maxAppendRetries bounds how often a handler re-reads and re-decides after losing an
// optimistic-lock race. Each retry sees a newer state, so a few are plenty.
const maxAppendRetries = 8

// update loads a payment, lets decide turn its state into events, and appends them at the
// loaded version (the optimistic lock). When another writer got there first it re-reads and
// decides again, so decide may run more than once. It returns the payment with the events
// applied and the events appended: none when decide chose none.
//
// merchant is who the caller acts for: a payment of another merchant is ErrPaymentNotFound,
// exactly as if it did not exist, and nothing is decided. System actors (recovery, webhooks,
// settlement import) that already scoped their work pass "".
func (s *Service) update(ctx context.Context, id domain.OrderID, merchant domain.MerchantID, meta eventstore.Metadata, decide func(domain.Payment) ([]domain.Event, error)) (domain.Payment, []domain.Event, error) {
	for range maxAppendRetries {
		p, _, err := s.load(ctx, id)
		if err != nil {
			return domain.Payment{}, nil, err
		}
		if merchant != "" && p.MerchantID != merchant {
			return domain.Payment{}, nil, notFound(id)
		}
		events, err := decide(p)
		if err != nil || len(events) == 0 {
			return p, nil, err
		}
		err = s.append(ctx, p, events, meta)
		if errors.Is(err, eventstore.ErrWrongExpectedVersion) {
			continue
		}
		if err != nil {
			return p, nil, fmt.Errorf("append to %s: %w", id, err)
		}
		for _, e := range events {
			if err := p.Apply(e); err != nil {
				return p, nil, err
			}
		}
		return p, events, nil
	}
	return domain.Payment{}, nil, domain.Errorf(domain.ErrConcurrentModification, "order %s kept changing; try again", id)
}

// unresolved reports whether a payment's outcome is unknown to us.
func unresolved(p domain.Payment) bool {
	return p.Status == domain.StatusExecuting || p.Status == domain.StatusUnknown
}

// append writes events at the payment's current version (the optimistic lock).
func (s *Service) append(ctx context.Context, p domain.Payment, events []domain.Event, meta eventstore.Metadata) error {
	data, err := Encode(events, meta)
	if err != nil {
		return err
	}
	_, err = s.store.Append(ctx, domain.StreamName(p.OrderID), eventstore.Exact(p.Version), data)
	return err
}

// newMetadata starts the metadata of a request: one correlation id per request.
func newMetadata(actor string) eventstore.Metadata {
	id := uuid.New()
	return eventstore.Metadata{CorrelationID: id, CausationID: id, Actor: actor}
}
