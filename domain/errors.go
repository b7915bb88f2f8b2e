package domain

import (
	"errors"
	"fmt"
	"strings"
)

// Kind is the closed set of error kinds. The HTTP adapter maps each kind to one status code.
type Kind int

const (
	KindInvalid     Kind = iota + 1 // the request is malformed or breaks a rule: 400
	KindNotFound                    // the thing does not exist: 404
	KindConflict                    // the request is valid but clashes with the current state: 409
	KindUnavailable                 // a dependency is down; try again: 503
	KindInternal                    // a bug or a broken invariant: 500
)

func (k Kind) String() string {
	switch k {
	case KindInvalid:
		return "invalid"
	case KindNotFound:
		return "not found"
	case KindConflict:
		return "conflict"
	case KindUnavailable:
		return "unavailable"
	case KindInternal:
		return "internal"
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Error is a domain error: a kind, a stable machine-readable code and a message for people.
// errors.Is matches two *Error values by Code, so callers compare against the sentinels below.
type Error struct {
	Kind    Kind
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Is reports whether target is an *Error with the same code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// Errorf returns an error with the kind and code of sentinel and a formatted message.
func Errorf(sentinel *Error, format string, args ...any) *Error {
	return &Error{Kind: sentinel.Kind, Code: sentinel.Code, Message: fmt.Sprintf(format, args...)}
}

// InvalidInputs makes the invalid-input problems found in one request one ErrInvalidInput
// naming them all, in order: an API answers one error, and a person fixing a form or a query
// wants every problem at once. nil errors are skipped; none left is nil.
func InvalidInputs(errs ...error) error {
	var msgs []string
	for _, err := range errs {
		var de *Error
		switch {
		case err == nil:
		case errors.As(err, &de):
			msgs = append(msgs, de.Message)
		default:
			msgs = append(msgs, err.Error())
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	return Errorf(ErrInvalidInput, "%s", strings.Join(msgs, "; "))
}

// KindOf returns the kind of the first *Error in err's chain, or KindInternal.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindInternal
}

// Sentinels. Each names one rule; the message of the returned error says the details.
var (
	ErrInvalidInput           = &Error{Kind: KindInvalid, Code: "INVALID_REQUEST", Message: "invalid request"}
	ErrInvalidAmount          = &Error{Kind: KindInvalid, Code: "INVALID_AMOUNT", Message: "invalid amount"}
	ErrAmountMismatch         = &Error{Kind: KindInvalid, Code: "AMOUNT_MISMATCH", Message: "amount does not match the checkout"}
	ErrPaymentNotFound        = &Error{Kind: KindNotFound, Code: "PAYMENT_NOT_FOUND", Message: "payment not found"}
	ErrIdempotencyConflict    = &Error{Kind: KindConflict, Code: "IDEMPOTENCY_KEY_REUSED", Message: "idempotency key reused with a different request"}
	ErrPaymentKeyMismatch     = &Error{Kind: KindConflict, Code: "PAYMENT_KEY_MISMATCH", Message: "payment is confirmed with another paymentKey"}
	ErrNotConfirmable         = &Error{Kind: KindConflict, Code: "PAYMENT_NOT_CONFIRMABLE", Message: "payment cannot be confirmed in its current state"}
	ErrCheckoutExpired        = &Error{Kind: KindConflict, Code: "CHECKOUT_EXPIRED", Message: "checkout expired"}
	ErrIllegalTransition      = &Error{Kind: KindConflict, Code: "ILLEGAL_TRANSITION", Message: "illegal state transition"}
	ErrPSPResponseMismatch    = &Error{Kind: KindInternal, Code: "PSP_RESPONSE_MISMATCH", Message: "PSP answer does not match the payment"}
	ErrHistoryBroken          = &Error{Kind: KindConflict, Code: "HISTORY_BROKEN", Message: "the stored history failed verification; nothing acts on it until a person repairs it"}
	ErrConcurrentModification = &Error{Kind: KindUnavailable, Code: "CONCURRENT_MODIFICATION", Message: "payment changed concurrently; try again"}
)
