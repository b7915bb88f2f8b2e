package projections

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/eventstore"
)

// Merchants maintains the merchants table (one row per merchant: name, mode, Toss key hint,
// commission rate) for lists and the settlement import. Authentication never reads it: it
// reads each merchant's stream. Each row remembers the stream version it reflects, so applying
// an event twice changes nothing.
type Merchants struct{}

var _ Projection = Merchants{}

// Name implements Projection.
func (Merchants) Name() string { return "merchants" }

// Apply implements Projection.
func (Merchants) Apply(ctx context.Context, tx pgx.Tx, r eventstore.RecordedEvent) error {
	if !strings.HasPrefix(r.StreamID, "merchant-") {
		return nil
	}
	e, err := domain.UnmarshalEvent(r.Type, r.SchemaVersion, r.Data)
	if err != nil {
		return err
	}
	var (
		sql  string
		args []any
	)
	switch e := e.(type) {
	case domain.MerchantRegistered:
		_, err := tx.Exec(ctx, `
			INSERT INTO merchants (merchant_id, name, mode, registered_at, updated_at, version)
			VALUES ($1, $2, $3, $4, $4, $5) ON CONFLICT (merchant_id) DO NOTHING`,
			e.MerchantID, e.Name, domain.ModeTest, e.At, r.Version)
		if err != nil {
			return fmt.Errorf("insert merchants %s: %w", e.MerchantID, err)
		}
		return nil
	case domain.TossCredentialsSet:
		sql, args = `toss_key_hint = $4, mode = $5`, []any{e.KeyHint, e.Mode}
	case domain.CommissionRateChanged:
		sql, args = `commission_rate = $4`, []any{e.Rate}
	default: // API keys: not listed here
		sql = `merchant_id = merchant_id`
	}
	h := e.Header()
	all := append([]any{h.MerchantID, r.Version, h.At}, args...)
	if _, err := tx.Exec(ctx, `UPDATE merchants SET version = $2, updated_at = $3, `+sql+`
		WHERE merchant_id = $1 AND version < $2`, all...); err != nil {
		return fmt.Errorf("update merchants %s: %w", h.MerchantID, err)
	}
	return nil
}
