package domain

import (
	"errors"
	"fmt"
	"time"

	"github.com/shopspring/decimal"
)

// Checkout: a new payment, validated whole and totalled from its lines.

// CheckoutLine is one requested line of a checkout.
type CheckoutLine struct {
	SellerID  string
	ProductID string
	Amount    decimal.Decimal
}

// CheckoutCommand asks for a new payment. The caller chooses the order id.
type CheckoutCommand struct {
	OrderID    OrderID
	MerchantID MerchantID
	BuyerID    string
	OrderName  string
	Currency   Currency
	Lines      []CheckoutLine
	TTL        time.Duration // how long the checkout may wait for a confirm
}

// Limits on a checkout.
const (
	MaxLines         = 100
	MaxOrderNameLen  = 100 // Toss's orderName limit
	MaxIdentifierLen = 64
)

// DefaultCheckoutTTL covers Toss's 30-minute payment window plus its 10-minute confirm window.
const DefaultCheckoutTTL = 40 * time.Minute

// Checkout decides a new payment: it validates every field (all problems at once) and computes
// the total from the lines.
func Checkout(cmd CheckoutCommand, now time.Time) (CheckoutCreated, error) {
	var errs []error
	if _, err := ParseOrderID(string(cmd.OrderID)); err != nil {
		errs = append(errs, err)
	}
	if err := checkText("merchantId", string(cmd.MerchantID), MaxIdentifierLen); err != nil {
		errs = append(errs, err)
	}
	if err := checkText("buyerId", cmd.BuyerID, MaxIdentifierLen); err != nil {
		errs = append(errs, err)
	}
	if err := checkText("orderName", cmd.OrderName, MaxOrderNameLen); err != nil {
		errs = append(errs, err)
	}
	if cmd.Currency != KRW {
		errs = append(errs, Errorf(ErrInvalidInput, "currency %q is not supported; use KRW", cmd.Currency))
	}
	if len(cmd.Lines) == 0 || len(cmd.Lines) > MaxLines {
		errs = append(errs, Errorf(ErrInvalidInput, "lines must hold 1 to %d lines, got %d", MaxLines, len(cmd.Lines)))
	}
	total := decimal.Zero
	lines := make([]Line, 0, len(cmd.Lines))
	for i, l := range cmd.Lines {
		if err := checkText(fmt.Sprintf("lines[%d].sellerId", i), l.SellerID, MaxIdentifierLen); err != nil {
			errs = append(errs, err)
		}
		if err := checkText(fmt.Sprintf("lines[%d].productId", i), l.ProductID, MaxIdentifierLen); err != nil {
			errs = append(errs, err)
		}
		if err := CheckAmount(l.Amount, cmd.Currency); err != nil {
			errs = append(errs, Errorf(ErrInvalidAmount, "lines[%d].amount: %s", i, err.(*Error).Message))
		}
		total = total.Add(l.Amount)
		lines = append(lines, Line{
			LineID:    LineID(fmt.Sprintf("L%d", i+1)),
			SellerID:  SellerID(l.SellerID),
			ProductID: ProductID(l.ProductID),
			Amount:    l.Amount,
		})
	}
	if len(errs) == 0 {
		if err := CheckAmount(total, cmd.Currency); err != nil {
			errs = append(errs, Errorf(ErrInvalidAmount, "total: %s", err.(*Error).Message))
		}
	}
	if len(errs) > 0 {
		return CheckoutCreated{}, joinInvalid(errs)
	}
	ttl := cmd.TTL
	if ttl <= 0 {
		ttl = DefaultCheckoutTTL
	}
	return CheckoutCreated{
		EventHeader: EventHeader{OrderID: cmd.OrderID, MerchantID: cmd.MerchantID, At: now},
		BuyerID:     BuyerID(cmd.BuyerID),
		OrderName:   cmd.OrderName,
		Currency:    cmd.Currency,
		TotalAmount: total,
		Lines:       lines,
		ExpiresAt:   now.Add(ttl),
	}, nil
}

// joinInvalid merges several validation errors into one *Error that keeps the code of the first
// (so a single problem keeps its precise code) and lists every message.
func joinInvalid(errs []error) error {
	if len(errs) == 1 {
		return errs[0]
	}
	var first *Error
	errors.As(errs[0], &first)
	msg := first.Message
	for _, err := range errs[1:] {
		var e *Error
		if errors.As(err, &e) {
			msg += "; " + e.Message
		}
	}
	return &Error{Kind: KindInvalid, Code: ErrInvalidInput.Code, Message: msg}
}
