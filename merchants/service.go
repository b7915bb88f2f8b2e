// Package merchants owns merchants and their credentials: the use cases on the merchant
// aggregate (register, set the Toss secret key, set the commission rate, issue, revoke and rotate
// API keys), the sealed storage of Toss secret keys, the authentication of API keys, and the
// per-merchant Toss clients (Directory).
//
// The merchant's stream (domain.MerchantStreamName) is the truth. Two tables hold what is not in
// it: merchant_secrets (each Toss secret key, sealed by package secrets) and api_key_index (which
// merchant a key id belongs to). Both are written before the event that names their row, so a
// key works and a secret opens the moment the event is committed; a row whose event never got
// appended names nothing and is harmless.
//
// Authentication and the Toss clients read the merchant from its stream through a cache that is
// re-checked against the stream every CacheTTL, so a revocation takes effect on every instance
// within CacheTTL of its event, whatever the projections' lag.
package merchants

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/google/uuid"
	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"

	"github.com/paymentledger/ledger/commands"
	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/eventstore"
	"github.com/paymentledger/ledger/psp/toss"
	"github.com/paymentledger/ledger/secrets"
)

// EventStore is what the service needs of the event store. A merchant is folded from its
// verified stream (ReadVerified): nobody's keys work from edited history.
type EventStore interface {
	Append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events []eventstore.EventData) (eventstore.AppendResult, error)
	ReadStream(ctx context.Context, stream string, from int64) ([]eventstore.RecordedEvent, error)
	ReadVerified(ctx context.Context, stream string) ([]eventstore.RecordedEvent, error)
}

var _ EventStore = (*eventstore.Postgres)(nil)

// Config holds the service's settings.
type Config struct {
	// Keyring seals and opens Toss secret keys. Without one, setting or using a Toss key fails.
	Keyring *secrets.Keyring
	// CacheTTL bounds how stale a merchant's state may be when a key is checked or a Toss
	// client chosen: revocations take effect within it. Default 500ms.
	CacheTTL time.Duration
	// Now is the clock. Default time.Now in domain.KST.
	Now    func() time.Time
	Logger *slog.Logger
}

// Service runs the merchant use cases. It is safe for concurrent use.
type Service struct {
	store  EventStore
	pool   *pgxpool.Pool
	cfg    Config
	logger *slog.Logger
	states *lru.Cache[domain.MerchantID, cached]
	index  *lru.Cache[domain.APIKeyID, domain.MerchantID]
}

// cached is a merchant's state as of checkedAt.
type cached struct {
	m         domain.Merchant
	checkedAt time.Time
}

// cacheSize bounds the merchants and key ids kept in memory.
const cacheSize = 10_000

// New returns a Service.
func New(store EventStore, pool *pgxpool.Pool, cfg Config) *Service {
	if cfg.CacheTTL <= 0 {
		cfg.CacheTTL = 500 * time.Millisecond
	}
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return time.Now().In(domain.KST) }
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	states, _ := lru.New[domain.MerchantID, cached](cacheSize)
	index, _ := lru.New[domain.APIKeyID, domain.MerchantID](cacheSize)
	return &Service{store: store, pool: pool, cfg: cfg, logger: logger, states: states, index: index}
}

// Actors recorded in the metadata of merchant events.
const (
	ActorAdmin    = "admin"    // the admin API
	ActorOperator = "operator" // paymentctl
	ActorSystem   = "system"   // paymentd itself (the demo merchant)
)

// load reads a merchant's stream and folds it. A missing stream is ErrMerchantNotFound.
func (s *Service) load(ctx context.Context, id domain.MerchantID) (domain.Merchant, error) {
	if _, err := domain.ParseMerchantID(string(id)); err != nil {
		return domain.Merchant{}, domain.Errorf(domain.ErrMerchantNotFound, "no merchant %q", truncate(string(id), 64))
	}
	recs, err := s.store.ReadVerified(ctx, domain.MerchantStreamName(id))
	if errors.Is(err, eventstore.ErrStreamNotFound) {
		return domain.Merchant{}, domain.Errorf(domain.ErrMerchantNotFound, "no merchant %s", id)
	}
	if errors.Is(err, eventstore.ErrChainBroken) {
		s.logger.ErrorContext(ctx, "a merchant's stored history failed verification; its keys and Toss key are refused", "merchantId", id, "error", err)
		return domain.Merchant{}, domain.Errorf(domain.ErrHistoryBroken, "the stored history of merchant %s failed verification", id)
	}
	if err != nil {
		return domain.Merchant{}, fmt.Errorf("merchants: load %s: %w", id, err)
	}
	m, err := fold(domain.Merchant{}, recs)
	if err != nil {
		return domain.Merchant{}, fmt.Errorf("merchants: load %s: %w", id, err)
	}
	s.remember(m)
	return m, nil
}

func fold(m domain.Merchant, recs []eventstore.RecordedEvent) (domain.Merchant, error) {
	events, err := commands.DecodeEvents(recs)
	if err != nil {
		return domain.Merchant{}, err
	}
	for _, e := range events {
		if err := m.Apply(e); err != nil {
			return domain.Merchant{}, err
		}
	}
	return m, nil
}

// remember caches m unless a newer state is cached already.
func (s *Service) remember(m domain.Merchant) {
	if c, ok := s.states.Peek(m.ID); ok && c.m.Version > m.Version {
		return
	}
	s.states.Add(m.ID, cached{m: m, checkedAt: s.cfg.Now()})
}

// state returns the merchant as of at most CacheTTL ago: the cached state, brought up to date
// from its stream when older than that.
func (s *Service) state(ctx context.Context, id domain.MerchantID) (domain.Merchant, error) {
	c, ok := s.states.Get(id)
	if !ok {
		return s.load(ctx, id)
	}
	if s.cfg.Now().Sub(c.checkedAt) < s.cfg.CacheTTL {
		return c.m, nil
	}
	recs, err := s.store.ReadStream(ctx, domain.MerchantStreamName(id), c.m.Version+1)
	if err != nil {
		return domain.Merchant{}, fmt.Errorf("merchants: refresh %s: %w", id, err)
	}
	m := c.m
	if len(recs) > 0 {
		// Apply mutates maps shared with the cached copy: start from a fresh fold instead.
		return s.load(ctx, id)
	}
	s.remember(m)
	return m, nil
}

// maxAppendRetries bounds the re-reads after losing an optimistic-lock race.
const maxAppendRetries = 8

// update loads the merchant, decides, and appends at the loaded version, re-deciding after a
// lost race (decide may run more than once).
func (s *Service) update(ctx context.Context, id domain.MerchantID, actor string, decide func(domain.Merchant) ([]domain.Event, error)) (domain.Merchant, []domain.Event, error) {
	for range maxAppendRetries {
		m, err := s.load(ctx, id)
		if err != nil {
			return domain.Merchant{}, nil, err
		}
		events, err := decide(m)
		if err != nil || len(events) == 0 {
			return m, nil, err
		}
		data, err := commands.Encode(events, newMetadata(actor))
		if err != nil {
			return m, nil, err
		}
		_, err = s.store.Append(ctx, domain.MerchantStreamName(id), eventstore.Exact(m.Version), data)
		if errors.Is(err, eventstore.ErrWrongExpectedVersion) {
			continue
		}
		if err != nil {
			return m, nil, fmt.Errorf("merchants: append to %s: %w", id, err)
		}
		m = cloneMerchant(m)
		for _, e := range events {
			if err := m.Apply(e); err != nil {
				return m, nil, err
			}
		}
		s.remember(m)
		return m, events, nil
	}
	return domain.Merchant{}, nil, domain.Errorf(domain.ErrConcurrentModification, "merchant %s kept changing; try again", id)
}

// cloneMerchant copies the parts Apply mutates in place, so a cached state is never changed.
func cloneMerchant(m domain.Merchant) domain.Merchant {
	keys := make(map[domain.APIKeyID]domain.APIKey, len(m.Keys))
	for k, v := range m.Keys {
		keys[k] = v
	}
	m.Keys = keys
	m.KeyOrder = slices.Clone(m.KeyOrder)
	return m
}

func newMetadata(actor string) eventstore.Metadata {
	id := uuid.New()
	return eventstore.Metadata{CorrelationID: id, CausationID: id, Actor: actor}
}

// CreateInput asks for a new merchant.
type CreateInput struct {
	ID            domain.MerchantID // optional: a new "mch_…" id when empty
	Name          string
	TossSecretKey string // optional: can be set later
	Actor         string
}

// IssuedKey is a new API key: Key is shown once and never stored.
type IssuedKey struct {
	MerchantID domain.MerchantID `json:"merchantId"`
	KeyID      domain.APIKeyID   `json:"keyId"`
	APIKey     string            `json:"apiKey"`
	Mode       domain.KeyMode    `json:"mode"`
	Scopes     []domain.Scope    `json:"scopes"`
	// Replaces and ReplacedUntil describe a rotation: the old key works until ReplacedUntil.
	Replaces      domain.APIKeyID `json:"replaces,omitempty"`
	ReplacedUntil *time.Time      `json:"replacedUntil,omitempty"`
}

// Create registers a merchant with its Toss key (if given) and a first API key with every
// scope, in one append: either all of it exists afterwards or none of it. An existing id is
// ErrMerchantExists.
func (s *Service) Create(ctx context.Context, in CreateInput) (IssuedKey, error) {
	id := in.ID
	if id == "" {
		generated, err := newID("mch_")
		if err != nil {
			return IssuedKey{}, err
		}
		id = domain.MerchantID(generated)
	}
	now := s.cfg.Now()
	events, err := domain.RegisterMerchant(id, in.Name, now)
	if err != nil {
		return IssuedKey{}, err
	}
	var m domain.Merchant
	apply := func(es []domain.Event, err error) error {
		if err != nil {
			return err
		}
		for _, e := range es {
			if err := m.Apply(e); err != nil {
				return err
			}
		}
		events = append(events, es...)
		return nil
	}
	if err := m.Apply(events[0]); err != nil {
		return IssuedKey{}, err
	}
	if in.TossSecretKey != "" {
		cred, err := s.storeSecret(ctx, id, in.TossSecretKey)
		if err != nil {
			return IssuedKey{}, err
		}
		if err := apply(m.DecideTossCredentials(cred, toss.SecretKeyHint(in.TossSecretKey), domain.ModeOfTossKey(in.TossSecretKey), now)); err != nil {
			return IssuedKey{}, err
		}
	}
	key, kid, hash, err := s.newKey(ctx, id, m.Mode)
	if err != nil {
		return IssuedKey{}, err
	}
	if err := apply(m.DecideIssueKey(domain.IssueKeyCommand{KeyID: kid, SecretHash: hash, Scopes: domain.AllScopes}, now)); err != nil {
		return IssuedKey{}, err
	}
	data, err := commands.Encode(events, newMetadata(in.Actor))
	if err != nil {
		return IssuedKey{}, err
	}
	_, err = s.store.Append(ctx, domain.MerchantStreamName(id), eventstore.NoStream, data)
	if errors.Is(err, eventstore.ErrWrongExpectedVersion) {
		return IssuedKey{}, domain.Errorf(domain.ErrMerchantExists, "merchant %s exists", id)
	}
	if err != nil {
		return IssuedKey{}, fmt.Errorf("merchants: create %s: %w", id, err)
	}
	s.remember(m)
	s.logger.InfoContext(ctx, "merchant created", "merchantId", id, "mode", m.Mode, "tossKey", m.TossKeyHint, "keyId", kid, "actor", in.Actor)
	return IssuedKey{MerchantID: id, KeyID: kid, APIKey: key, Mode: m.Mode, Scopes: domain.AllScopes}, nil
}

// newKey makes a key and records which merchant its id belongs to.
func (s *Service) newKey(ctx context.Context, id domain.MerchantID, mode domain.KeyMode) (string, domain.APIKeyID, string, error) {
	key, kid, hash, err := newAPIKey(mode)
	if err != nil {
		return "", "", "", fmt.Errorf("merchants: new API key: %w", err)
	}
	if _, err := s.pool.Exec(ctx, `INSERT INTO api_key_index (key_id, merchant_id) VALUES ($1, $2)`, kid, id); err != nil {
		return "", "", "", fmt.Errorf("merchants: index API key: %w", err)
	}
	return key, kid, hash, nil
}

// SetTossKey stores a merchant's new Toss secret key, sealed, and records it.
func (s *Service) SetTossKey(ctx context.Context, id domain.MerchantID, secretKey, actor string) (Detail, error) {
	if _, err := s.load(ctx, id); err != nil {
		return Detail{}, err
	}
	cred, err := s.storeSecret(ctx, id, secretKey)
	if err != nil {
		return Detail{}, err
	}
	m, _, err := s.update(ctx, id, actor, func(m domain.Merchant) ([]domain.Event, error) {
		return m.DecideTossCredentials(cred, toss.SecretKeyHint(secretKey), domain.ModeOfTossKey(secretKey), s.cfg.Now())
	})
	if err != nil {
		return Detail{}, err
	}
	s.logger.InfoContext(ctx, "merchant Toss key set", "merchantId", id, "mode", m.Mode, "tossKey", m.TossKeyHint, "actor", actor)
	return s.detail(m), nil
}

// SetCommission records a merchant's new commission rate (a fraction: 0.1 = 10%).
func (s *Service) SetCommission(ctx context.Context, id domain.MerchantID, rate decimal.Decimal, actor string) (Detail, error) {
	m, _, err := s.update(ctx, id, actor, func(m domain.Merchant) ([]domain.Event, error) {
		return m.DecideCommissionRate(rate, s.cfg.Now())
	})
	if err != nil {
		return Detail{}, err
	}
	return s.detail(m), nil
}

// SetTossFeeRate records the fee rate of the merchant's contract with Toss (a fraction of the
// amount, VAT excluded: 0.0341 = 3.41%) from from on: now when from is zero, an earlier moment to
// correct a rate entered wrongly, a later one for a contract change to come. Reconciliation
// checks each settlement row's fee against the rate in force when its transaction happened.
func (s *Service) SetTossFeeRate(ctx context.Context, id domain.MerchantID, rate decimal.Decimal, from time.Time, actor string) (Detail, error) {
	m, events, err := s.update(ctx, id, actor, func(m domain.Merchant) ([]domain.Event, error) {
		return m.DecideTossFeeRate(rate, from, s.cfg.Now())
	})
	if err != nil {
		return Detail{}, err
	}
	if len(events) > 0 {
		s.logger.InfoContext(ctx, "merchant Toss fee rate set", "merchantId", id, "rate", rate,
			"from", events[0].(domain.TossFeeRateSet).EffectiveFrom, "actor", actor)
	}
	return s.detail(m), nil
}

// TossFeeRates returns the merchant's contract fee rates with Toss in the order they were set,
// read from its verified stream (none when no rate was ever set).
func (s *Service) TossFeeRates(ctx context.Context, id domain.MerchantID) ([]domain.FeeRatePeriod, error) {
	m, err := s.load(ctx, id)
	if err != nil {
		return nil, err
	}
	return slices.Clone(m.TossFeeRates), nil
}

// IssueKey issues a new API key with scopes (all of them when none are given).
func (s *Service) IssueKey(ctx context.Context, id domain.MerchantID, scopes []domain.Scope, actor string) (IssuedKey, error) {
	if len(scopes) == 0 {
		scopes = domain.AllScopes
	}
	m, err := s.load(ctx, id)
	if err != nil {
		return IssuedKey{}, err
	}
	key, kid, hash, err := s.newKey(ctx, id, m.Mode)
	if err != nil {
		return IssuedKey{}, err
	}
	m, _, err = s.update(ctx, id, actor, func(m domain.Merchant) ([]domain.Event, error) {
		return m.DecideIssueKey(domain.IssueKeyCommand{KeyID: kid, SecretHash: hash, Scopes: scopes}, s.cfg.Now())
	})
	if err != nil {
		return IssuedKey{}, err
	}
	k := m.Keys[kid]
	s.logger.InfoContext(ctx, "API key issued", "merchantId", id, "keyId", kid, "scopes", k.Scopes, "actor", actor)
	return IssuedKey{MerchantID: id, KeyID: kid, APIKey: key, Mode: k.Mode, Scopes: k.Scopes}, nil
}

// RevokeKey stops a key now. Every instance refuses it within CacheTTL.
func (s *Service) RevokeKey(ctx context.Context, id domain.MerchantID, kid domain.APIKeyID, actor string) (KeyInfo, error) {
	m, _, err := s.update(ctx, id, actor, func(m domain.Merchant) ([]domain.Event, error) {
		return m.DecideRevokeKey(kid, s.cfg.Now())
	})
	if err != nil {
		return KeyInfo{}, err
	}
	s.logger.InfoContext(ctx, "API key revoked", "merchantId", id, "keyId", kid, "actor", actor)
	return keyInfo(m.Keys[kid], s.cfg.Now()), nil
}

// RotateKey issues a new key with the scopes of kid and lets kid work for grace more.
func (s *Service) RotateKey(ctx context.Context, id domain.MerchantID, kid domain.APIKeyID, grace time.Duration, actor string) (IssuedKey, error) {
	m, err := s.load(ctx, id)
	if err != nil {
		return IssuedKey{}, err
	}
	key, next, hash, err := s.newKey(ctx, id, m.Mode)
	if err != nil {
		return IssuedKey{}, err
	}
	m, _, err = s.update(ctx, id, actor, func(m domain.Merchant) ([]domain.Event, error) {
		return m.DecideRotateKey(kid, domain.IssueKeyCommand{KeyID: next, SecretHash: hash}, grace, s.cfg.Now())
	})
	if err != nil {
		return IssuedKey{}, err
	}
	k, old := m.Keys[next], m.Keys[kid]
	until := old.RevokedAt
	s.logger.InfoContext(ctx, "API key rotated", "merchantId", id, "keyId", next, "replaces", kid, "oldKeyUntil", until, "actor", actor)
	return IssuedKey{MerchantID: id, KeyID: next, APIKey: key, Mode: k.Mode, Scopes: k.Scopes, Replaces: kid, ReplacedUntil: &until}, nil
}

// KeyInfo describes an API key without its secret.
type KeyInfo struct {
	KeyID     domain.APIKeyID `json:"keyId"`
	Mode      domain.KeyMode  `json:"mode"`
	Scopes    []domain.Scope  `json:"scopes"`
	IssuedAt  time.Time       `json:"issuedAt"`
	Status    string          `json:"status"` // active, expiring (a rotated key in its grace period) or revoked
	RevokedAt *time.Time      `json:"revokedAt,omitempty"`
	Replaces  domain.APIKeyID `json:"replaces,omitempty"`
}

func keyInfo(k domain.APIKey, now time.Time) KeyInfo {
	info := KeyInfo{KeyID: k.ID, Mode: k.Mode, Scopes: k.Scopes, IssuedAt: k.IssuedAt.In(domain.KST), Replaces: k.Replaces, Status: "active"}
	if !k.RevokedAt.IsZero() {
		at := k.RevokedAt.In(domain.KST)
		info.RevokedAt = &at
		info.Status = "revoked"
		if k.ActiveAt(now) {
			info.Status = "expiring"
		}
	}
	return info
}

// Detail is a merchant as an operator sees it: never a secret.
type Detail struct {
	MerchantID     domain.MerchantID `json:"merchantId"`
	Name           string            `json:"name"`
	Mode           domain.KeyMode    `json:"mode"`
	TossKey        string            `json:"tossKey,omitempty"` // a hint: prefix and last four characters
	CommissionRate decimal.Decimal   `json:"commissionRate"`
	// TossFeeRate is the contract's fee rate with Toss in force now; absent while none applies
	// (then reconciliation does not check settlement fees).
	TossFeeRate  *decimal.Decimal `json:"tossFeeRate,omitempty"`
	RegisteredAt time.Time        `json:"registeredAt"`
	Keys         []KeyInfo        `json:"keys"`
	// Notification is where its payment events are POSTed (never the secret: its hint).
	Notification *NotificationSetting `json:"notification,omitempty"`
}

func (s *Service) detail(m domain.Merchant) Detail {
	now := s.cfg.Now()
	d := Detail{MerchantID: m.ID, Name: m.Name, Mode: m.Mode, TossKey: m.TossKeyHint, CommissionRate: m.CommissionRate,
		RegisteredAt: m.RegisteredAt.In(domain.KST), Keys: []KeyInfo{}}
	if rate, ok := m.TossFeeRateAt(now); ok {
		d.TossFeeRate = &rate
	}
	for _, kid := range m.KeyOrder {
		d.Keys = append(d.Keys, keyInfo(m.Keys[kid], now))
	}
	if m.Notification.Set() {
		n := s.notificationSetting(m)
		d.Notification = &n
	}
	return d
}

// Show returns a merchant, read from its stream.
func (s *Service) Show(ctx context.Context, id domain.MerchantID) (Detail, error) {
	m, err := s.load(ctx, id)
	if err != nil {
		return Detail{}, err
	}
	return s.detail(m), nil
}

// Exists reports whether a merchant is registered (from the cached state).
func (s *Service) Exists(ctx context.Context, id domain.MerchantID) (bool, error) {
	_, err := s.state(ctx, id)
	if errors.Is(err, domain.ErrMerchantNotFound) {
		return false, nil
	}
	return err == nil, err
}

// Summary is one merchant in a list.
type Summary struct {
	MerchantID     domain.MerchantID `json:"merchantId"`
	Name           string            `json:"name"`
	Mode           domain.KeyMode    `json:"mode"`
	TossKey        string            `json:"tossKey,omitempty"`
	CommissionRate decimal.Decimal   `json:"commissionRate"`
	RegisteredAt   time.Time         `json:"registeredAt"`
}

// List returns every merchant, oldest first, from the merchants read model: a merchant created
// a moment ago may be missing for the few milliseconds the projection trails.
func (s *Service) List(ctx context.Context) ([]Summary, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT merchant_id, name, mode, COALESCE(toss_key_hint, ''), commission_rate, registered_at
		FROM merchants ORDER BY registered_at, merchant_id`)
	if err != nil {
		return nil, fmt.Errorf("merchants: list: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Summary, error) {
		var m Summary
		err := r.Scan(&m.MerchantID, &m.Name, &m.Mode, &m.TossKey, &m.CommissionRate, &m.RegisteredAt)
		m.RegisteredAt = m.RegisteredAt.In(domain.KST)
		return m, err
	})
	if err != nil {
		return nil, fmt.Errorf("merchants: list: %w", err)
	}
	if out == nil {
		out = []Summary{}
	}
	return out, nil
}

// WithTossKeys lists the merchants that have a Toss secret key (for the settlement import).
func (s *Service) WithTossKeys(ctx context.Context) ([]domain.MerchantID, error) {
	rows, err := s.pool.Query(ctx, `SELECT merchant_id FROM merchants WHERE toss_key_hint IS NOT NULL ORDER BY merchant_id`)
	if err != nil {
		return nil, fmt.Errorf("merchants: with Toss keys: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[domain.MerchantID])
	if err != nil {
		return nil, fmt.Errorf("merchants: with Toss keys: %w", err)
	}
	return ids, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
