package domain

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/shopspring/decimal"
)

// EventType names an event. The names are part of the stored schema: never rename one.
type EventType string

const (
	EventCheckoutCreated       EventType = "CheckoutCreated"
	EventConfirmationStarted   EventType = "ConfirmationStarted"
	EventPaymentApproved       EventType = "PaymentApproved"
	EventPaymentRejected       EventType = "PaymentRejected"
	EventPaymentOutcomeUnknown EventType = "PaymentOutcomeUnknown"
	EventPaymentExpired        EventType = "PaymentExpired"
)

// SchemaVersion is the version of every event body written by this code.
const SchemaVersion = 1

// Event is a fact about one payment. Every event carries the order and the merchant.
type Event interface {
	EventType() EventType
	Header() EventHeader
}

// EventHeader is the part every payment event shares.
type EventHeader struct {
	OrderID    OrderID    `json:"orderId"`
	MerchantID MerchantID `json:"merchantId"`
	At         time.Time  `json:"at"` // when the fact happened (our clock)
}

func (h EventHeader) Header() EventHeader { return h }

// CheckoutCreated: a checkout was accepted. TotalAmount is the sum of the lines.
type CheckoutCreated struct {
	EventHeader
	BuyerID     BuyerID         `json:"buyerId"`
	OrderName   string          `json:"orderName"`
	Currency    Currency        `json:"currency"`
	TotalAmount decimal.Decimal `json:"totalAmount"`
	Lines       []Line          `json:"lines"`
	ExpiresAt   time.Time       `json:"expiresAt"`
}

// Line is one seller's part of an order.
type Line struct {
	LineID    LineID          `json:"lineId"`
	SellerID  SellerID        `json:"sellerId"`
	ProductID ProductID       `json:"productId"`
	Amount    decimal.Decimal `json:"amount"`
}

// ConfirmationStarted: a confirm was accepted and the PSP is about to be called with
// PSPIdempotencyKey. Written before the call, so a crash during it is visible as EXECUTING.
type ConfirmationStarted struct {
	EventHeader
	PaymentKey        PaymentKey      `json:"paymentKey"`
	Amount            decimal.Decimal `json:"amount"`
	Attempt           int             `json:"attempt"`
	PSPIdempotencyKey string          `json:"pspIdempotencyKey"`
}

// PaymentApproved: the PSP says DONE.
type PaymentApproved struct {
	EventHeader
	PaymentKey         PaymentKey      `json:"paymentKey"`
	ApprovedAt         time.Time       `json:"approvedAt"` // the PSP's approval time
	Method             string          `json:"method"`
	TotalAmount        decimal.Decimal `json:"totalAmount"`
	LastTransactionKey string          `json:"lastTransactionKey"`
}

// RejectionSource says who refused a payment.
type RejectionSource string

const (
	SourcePSP        RejectionSource = "psp"        // the PSP gave a final failure
	SourceValidation RejectionSource = "validation" // our own check refused it before any PSP call
)

// PaymentRejected: the payment failed for good.
type PaymentRejected struct {
	EventHeader
	PaymentKey PaymentKey      `json:"paymentKey,omitempty"`
	Code       string          `json:"code"`
	Message    string          `json:"message"`
	Source     RejectionSource `json:"source"`
}

// PaymentOutcomeUnknown: the PSP call ended without a known result (timeout, 5xx, a retryable
// code). The payment may or may not be charged; recovery reads it back.
type PaymentOutcomeUnknown struct {
	EventHeader
	PaymentKey PaymentKey `json:"paymentKey"`
	Code       string     `json:"code"` // the PSP code, or TIMEOUT / NETWORK_ERROR
	Message    string     `json:"message"`
	Attempt    int        `json:"attempt"`
}

// PaymentExpired: the checkout was never confirmed in time, or the PSP session expired.
type PaymentExpired struct {
	EventHeader
	Reason string `json:"reason"`
}

func (CheckoutCreated) EventType() EventType       { return EventCheckoutCreated }
func (ConfirmationStarted) EventType() EventType   { return EventConfirmationStarted }
func (PaymentApproved) EventType() EventType       { return EventPaymentApproved }
func (PaymentRejected) EventType() EventType       { return EventPaymentRejected }
func (PaymentOutcomeUnknown) EventType() EventType { return EventPaymentOutcomeUnknown }
func (PaymentExpired) EventType() EventType        { return EventPaymentExpired }

// MarshalEvent encodes an event body as stored (JSON, decimal amounts as strings).
func MarshalEvent(e Event) ([]byte, error) {
	b, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("domain: marshal %s: %w", e.EventType(), err)
	}
	return b, nil
}

// UnmarshalEvent decodes a stored event body. An unknown type or schema version is an error:
// a reader must never silently skip a fact.
func UnmarshalEvent(typ string, schemaVersion int, data []byte) (Event, error) {
	if schemaVersion != SchemaVersion {
		return nil, fmt.Errorf("domain: %s: unsupported schema version %d", typ, schemaVersion)
	}
	var e Event
	switch EventType(typ) {
	case EventCheckoutCreated:
		e = &CheckoutCreated{}
	case EventConfirmationStarted:
		e = &ConfirmationStarted{}
	case EventPaymentApproved:
		e = &PaymentApproved{}
	case EventPaymentRejected:
		e = &PaymentRejected{}
	case EventPaymentOutcomeUnknown:
		e = &PaymentOutcomeUnknown{}
	case EventPaymentExpired:
		e = &PaymentExpired{}
	case EventRecoveryExhausted:
		e = &RecoveryExhausted{}
	case EventCancelRequested:
		e = &CancelRequested{}
	case EventPaymentCanceled:
		e = &PaymentCanceled{}
	case EventCancelRejected:
		e = &CancelRejected{}
	case EventCancelOutcomeUnknown:
		e = &CancelOutcomeUnknown{}
	case EventSettlementRecorded:
		e = &SettlementRecorded{}
	case EventCancelRecoveryExhausted:
		e = &CancelRecoveryExhausted{}
	default:
		return nil, fmt.Errorf("domain: unknown event type %q", typ)
	}
	if err := json.Unmarshal(data, e); err != nil {
		return nil, fmt.Errorf("domain: unmarshal %s: %w", typ, err)
	}
	return deref(e), nil
}

// deref turns the pointer used for decoding back into the value type the decider produces, so
// that events compare equal whichever way they were obtained.
func deref(e Event) Event {
	switch v := e.(type) {
	case *CheckoutCreated:
		return *v
	case *ConfirmationStarted:
		return *v
	case *PaymentApproved:
		return *v
	case *PaymentRejected:
		return *v
	case *PaymentOutcomeUnknown:
		return *v
	case *PaymentExpired:
		return *v
	case *RecoveryExhausted:
		return *v
	case *CancelRequested:
		return *v
	case *PaymentCanceled:
		return *v
	case *CancelRejected:
		return *v
	case *CancelOutcomeUnknown:
		return *v
	case *SettlementRecorded:
		return *v
	case *CancelRecoveryExhausted:
		return *v
	}
	return e
}
