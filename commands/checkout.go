package commands

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"

	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/eventstore"
)

// MaxIdempotencyKeyLen bounds the Idempotency-Key header of our own API.
const MaxIdempotencyKeyLen = 255

// CheckoutInput is a checkout request.
type CheckoutInput struct {
	Merchant       domain.MerchantID // who asks: the payment is theirs
	IdempotencyKey string            // optional; the same merchant, key and body give the same answer
	OrderName      string
	BuyerID        string
	Lines          []domain.CheckoutLine
}

// CheckoutResult is the answer to a checkout. Replayed is true when it is the stored answer to
// an earlier request with the same Idempotency-Key.
type CheckoutResult struct {
	OrderID   domain.OrderID
	OrderName string
	Amount    decimal.Decimal
	Currency  domain.Currency
	Status    domain.Status
	Replayed  bool
}

// checkIdempotencyKey validates our API's Idempotency-Key header (optional).
func checkIdempotencyKey(key string) error {
	if len(key) > MaxIdempotencyKeyLen {
		return domain.Errorf(domain.ErrInvalidInput, "Idempotency-Key must be at most %d characters", MaxIdempotencyKeyLen)
	}
	for _, r := range key {
		if r < ' ' || r > '~' {
			return domain.Errorf(domain.ErrInvalidInput, "Idempotency-Key must be printable ASCII")
		}
	}
	return nil
}

// orderIDNamespace scopes the order ids derived from idempotency keys.
var orderIDNamespace = uuid.MustParse("6f1c9b1e-4a57-4c2b-9f0e-2d4b8c7a1e55")

// Checkout creates a payment. The server computes the total from the lines.
//
// Idempotency is by construction, not by a read-then-write check: with an Idempotency-Key the
// order id is derived from (merchant, key), and the CheckoutCreated event is appended with
// expected version NoStream. A second request with the same key therefore hits the existing
// stream; if its body hash matches the stored one, it gets the first answer again; otherwise it
// is ErrIdempotencyConflict.
func (s *Service) Checkout(ctx context.Context, in CheckoutInput) (CheckoutResult, error) {
	if err := checkMerchant(in.Merchant); err != nil {
		return CheckoutResult{}, err
	}
	if err := checkIdempotencyKey(in.IdempotencyKey); err != nil {
		return CheckoutResult{}, err
	}
	orderID := domain.OrderID(uuid.Must(uuid.NewV7()).String())
	if in.IdempotencyKey != "" {
		// Keys are per merchant: the same key from two merchants names two orders.
		orderID = domain.OrderID(uuid.NewSHA1(orderIDNamespace, []byte(string(in.Merchant)+"\x00"+in.IdempotencyKey)).String())
	}
	created, err := domain.Checkout(domain.CheckoutCommand{
		OrderID:    orderID,
		MerchantID: in.Merchant,
		BuyerID:    in.BuyerID,
		OrderName:  in.OrderName,
		Currency:   domain.KRW,
		Lines:      in.Lines,
		TTL:        s.cfg.CheckoutTTL,
	}, s.now())
	if err != nil {
		return CheckoutResult{}, err
	}
	meta := newMetadata("merchant")
	meta.IdempotencyKey = in.IdempotencyKey
	meta.RequestHash = requestHash(created)
	data, err := Encode([]domain.Event{created}, meta)
	if err != nil {
		return CheckoutResult{}, err
	}
	_, err = s.store.Append(ctx, domain.StreamName(orderID), eventstore.NoStream, data)
	if errors.Is(err, eventstore.ErrWrongExpectedVersion) && in.IdempotencyKey != "" {
		return s.replayCheckout(ctx, orderID, in.Merchant, meta.RequestHash)
	}
	if err != nil {
		return CheckoutResult{}, fmt.Errorf("checkout: %w", err)
	}
	s.logger.InfoContext(ctx, "checkout created", "orderId", orderID, "amount", created.TotalAmount.String(), "lines", len(created.Lines))
	return checkoutResult(created, false), nil
}

// replayCheckout answers a repeated Idempotency-Key from the stored CheckoutCreated.
func (s *Service) replayCheckout(ctx context.Context, orderID domain.OrderID, merchant domain.MerchantID, hash string) (CheckoutResult, error) {
	recs, err := s.store.ReadVerified(ctx, domain.StreamName(orderID))
	if errors.Is(err, eventstore.ErrChainBroken) {
		return CheckoutResult{}, domain.Errorf(domain.ErrHistoryBroken, "the stored history of order %s failed verification", orderID)
	}
	if err != nil {
		return CheckoutResult{}, fmt.Errorf("checkout replay: %w", err)
	}
	first := recs[0]
	if first.Metadata.RequestHash != hash || first.Metadata.MerchantID != string(merchant) {
		return CheckoutResult{}, domain.Errorf(domain.ErrIdempotencyConflict,
			"Idempotency-Key %q was already used for a checkout with a different body (order %s)", first.Metadata.IdempotencyKey, orderID)
	}
	e, err := domain.UnmarshalEvent(first.Type, first.SchemaVersion, first.Data)
	if err != nil {
		return CheckoutResult{}, err
	}
	created, ok := e.(domain.CheckoutCreated)
	if !ok {
		return CheckoutResult{}, fmt.Errorf("checkout replay: stream %s starts with %s", first.StreamID, first.Type)
	}
	return checkoutResult(created, true), nil
}

func checkoutResult(c domain.CheckoutCreated, replayed bool) CheckoutResult {
	return CheckoutResult{
		OrderID: c.OrderID, OrderName: c.OrderName, Amount: c.TotalAmount,
		Currency: c.Currency, Status: domain.StatusNotStarted, Replayed: replayed,
	}
}

// requestHash fingerprints what the caller asked for (not what we derived), with amounts in
// canonical form so "15000" and 15000 are the same request.
func requestHash(c domain.CheckoutCreated) string {
	type line struct{ SellerID, ProductID, Amount string }
	body := struct {
		OrderName, BuyerID string
		Lines              []line
	}{OrderName: c.OrderName, BuyerID: string(c.BuyerID)}
	for _, l := range c.Lines {
		body.Lines = append(body.Lines, line{string(l.SellerID), string(l.ProductID), l.Amount.String()})
	}
	b, _ := json.Marshal(body) // cannot fail: strings only
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
