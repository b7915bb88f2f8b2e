package projections

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"

	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/eventstore"
)

// Merchants maintains the merchants table (one row per merchant: name, mode, Toss key hint,
// commission rate) for lists and the settlement import. Authentication never reads it: it
// reads each merchant's stream. Each row remembers the stream version it reflects, so applying
// an event twice changes nothing.
//
// The rules (applyMerchants) read and write through merchantsStore: the SQL store for Apply, an
// in-memory one for a replay (replay.go).
type Merchants struct{}

var _ Projection = Merchants{}

// MerchantsName is the merchants projection's checkpoint name.
const MerchantsName = "merchants"

// Name implements Projection.
func (Merchants) Name() string { return MerchantsName }

// Apply implements Projection.
func (Merchants) Apply(ctx context.Context, tx pgx.Tx, r eventstore.RecordedEvent) error {
	if !merchantsDecodes(r) {
		return nil
	}
	e, err := domain.UnmarshalEvent(r.Type, r.SchemaVersion, r.Data)
	if err != nil {
		return err
	}
	return applyMerchants(ctx, sqlMerchants{tx}, r, e)
}

// merchantsDecodes tells the events the projection reads: those of merchant streams.
func merchantsDecodes(r eventstore.RecordedEvent) bool {
	return strings.HasPrefix(r.StreamID, "merchant-")
}

type merchantRow struct {
	MerchantID     domain.MerchantID
	Name           string
	Mode           domain.KeyMode
	TossKeyHint    *string
	CommissionRate decimal.Decimal
	RegisteredAt   time.Time
	UpdatedAt      time.Time
	Version        int64
}

const merchantColumns = `merchant_id, name, mode, toss_key_hint, commission_rate, registered_at, updated_at, version`

func (m *merchantRow) values() []any {
	return []any{m.MerchantID, m.Name, m.Mode, m.TossKeyHint, m.CommissionRate, m.RegisteredAt, m.UpdatedAt, m.Version}
}

// merchantsStore is where the rules read and write: get returns nil when the merchant has no
// row; insert writes a row unless the merchant has one; update writes every column of a row get
// returned.
type merchantsStore interface {
	get(ctx context.Context, id domain.MerchantID) (*merchantRow, error)
	insert(ctx context.Context, m *merchantRow) error
	update(ctx context.Context, m *merchantRow) error
}

// applyMerchants is the merchants projection's rules (events of merchant streams only).
func applyMerchants(ctx context.Context, st merchantsStore, r eventstore.RecordedEvent, e domain.Event) error {
	var change func(*merchantRow)
	switch e := e.(type) {
	case domain.MerchantRegistered:
		return st.insert(ctx, &merchantRow{MerchantID: e.MerchantID, Name: e.Name, Mode: domain.ModeTest,
			CommissionRate: decimal.Zero, RegisteredAt: e.At, UpdatedAt: e.At, Version: r.Version})
	case domain.TossCredentialsSet:
		change = func(m *merchantRow) { m.TossKeyHint, m.Mode = ptr(e.KeyHint), e.Mode }
	case domain.CommissionRateChanged:
		change = func(m *merchantRow) { m.CommissionRate = e.Rate }
	default: // API keys: not listed here; the version moves
		change = func(*merchantRow) {}
	}
	h := e.Header()
	m, err := st.get(ctx, h.MerchantID)
	if err != nil || m == nil || m.Version >= r.Version {
		return err
	}
	change(m)
	m.Version, m.UpdatedAt = r.Version, h.At
	return st.update(ctx, m)
}

// sqlMerchants is the store on the merchants table inside the caller's transaction (unqualified
// name: the search_path chooses live or shadow).
type sqlMerchants struct{ tx pgx.Tx }

func (s sqlMerchants) get(ctx context.Context, id domain.MerchantID) (*merchantRow, error) {
	m := &merchantRow{}
	err := s.tx.QueryRow(ctx, `SELECT `+merchantColumns+` FROM merchants WHERE merchant_id = $1`, id).Scan(&m.MerchantID, &m.Name,
		&m.Mode, &m.TossKeyHint, &m.CommissionRate, &m.RegisteredAt, &m.UpdatedAt, &m.Version)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read merchants %s: %w", id, err)
	}
	return m, nil
}

func (s sqlMerchants) insert(ctx context.Context, m *merchantRow) error {
	_, err := s.tx.Exec(ctx, `INSERT INTO merchants (`+merchantColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		ON CONFLICT (merchant_id) DO NOTHING`, m.values()...)
	if err != nil {
		return fmt.Errorf("insert merchants %s: %w", m.MerchantID, err)
	}
	return nil
}

func (s sqlMerchants) update(ctx context.Context, m *merchantRow) error {
	_, err := s.tx.Exec(ctx, `UPDATE merchants SET (`+merchantColumns+`) = ($1, $2, $3, $4, $5, $6, $7, $8)
		WHERE merchant_id = $1`, m.values()...)
	if err != nil {
		return fmt.Errorf("update merchants %s: %w", m.MerchantID, err)
	}
	return nil
}
