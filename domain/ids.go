package domain

import (
	"fmt"
	"unicode/utf8"
)

// CancelID identifies one cancel of a payment.
type CancelID string

// Typed identifiers. Each has a constructor that validates it; the zero value is invalid.
type (
	OrderID    string // the merchant's order id, also Toss's orderId: 6–64 of A-Z a-z 0-9 - _
	MerchantID string
	BuyerID    string
	SellerID   string
	ProductID  string
	LineID     string
	PaymentKey string // Toss's paymentKey
)

// ParseOrderID validates an order id against Toss's rule (toss-api.md §4.1).
func ParseOrderID(s string) (OrderID, error) {
	if len(s) < 6 || len(s) > 64 {
		return "", Errorf(ErrInvalidInput, "orderId must be 6 to 64 characters, got %d", len(s))
	}
	for _, r := range s {
		if !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return "", Errorf(ErrInvalidInput, "orderId may hold only A-Z, a-z, 0-9, '-' and '_'")
		}
	}
	return OrderID(s), nil
}

// ParsePaymentKey validates a Toss paymentKey (1–200 printable ASCII characters).
func ParsePaymentKey(s string) (PaymentKey, error) {
	if err := checkText("paymentKey", s, 200); err != nil {
		return "", err
	}
	for _, r := range s {
		if r <= ' ' || r > '~' {
			return "", Errorf(ErrInvalidInput, "paymentKey must be printable ASCII without spaces")
		}
	}
	return PaymentKey(s), nil
}

// checkText validates a required free-text field: not empty, at most max characters, valid
// UTF-8, no control characters.
func checkText(field, s string, max int) error {
	if s == "" {
		return Errorf(ErrInvalidInput, "%s is required", field)
	}
	if !utf8.ValidString(s) {
		return Errorf(ErrInvalidInput, "%s must be valid UTF-8", field)
	}
	if n := utf8.RuneCountInString(s); n > max {
		return Errorf(ErrInvalidInput, "%s must be at most %d characters, got %d", field, max, n)
	}
	for _, r := range s {
		if r < ' ' || r == 0x7f {
			return Errorf(ErrInvalidInput, "%s must not contain control characters", field)
		}
	}
	return nil
}

// StreamName is the event stream of one payment.
func StreamName(id OrderID) string { return "payment-" + string(id) }

// ConfirmIdempotencyKey is the Toss Idempotency-Key of confirm attempt n of a payment. In-request
// retries reuse it; a new attempt (after a read-back) gets a new one (DESIGN.md).
func ConfirmIdempotencyKey(id OrderID, attempt int) string {
	return fmt.Sprintf("%s:confirm:%d", id, attempt)
}

// APIKeyID is the public part of an API key, used to find it; the secret part is never stored.
type APIKeyID string
