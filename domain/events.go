package domain

import (
	"encoding/json"
	"fmt"
	"sort"
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

// decoders is the registry of every event type this code reads, payment and merchant alike.
// An event type missing here cannot be read back: add it when adding a type.
var decoders = map[EventType]func([]byte) (Event, error){
	EventCheckoutCreated:         decodeAs[CheckoutCreated],
	EventConfirmationStarted:     decodeAs[ConfirmationStarted],
	EventPaymentApproved:         decodeAs[PaymentApproved],
	EventPaymentRejected:         decodeAs[PaymentRejected],
	EventPaymentOutcomeUnknown:   decodeAs[PaymentOutcomeUnknown],
	EventPaymentExpired:          decodeAs[PaymentExpired],
	EventRecoveryExhausted:       decodeAs[RecoveryExhausted],
	EventCancelRequested:         decodeAs[CancelRequested],
	EventPaymentCanceled:         decodeAs[PaymentCanceled],
	EventCancelRejected:          decodeAs[CancelRejected],
	EventCancelOutcomeUnknown:    decodeAs[CancelOutcomeUnknown],
	EventCancelRetried:           decodeAs[CancelRetried],
	EventSettlementRecorded:      decodeAs[SettlementRecorded],
	EventCancelRecoveryExhausted: decodeAs[CancelRecoveryExhausted],
	EventMerchantRegistered:      decodeAs[MerchantRegistered],
	EventTossCredentialsSet:      decodeAs[TossCredentialsSet],
	EventCommissionRateChanged:   decodeAs[CommissionRateChanged],
	EventAPIKeyIssued:            decodeAs[APIKeyIssued],
	EventAPIKeyRevoked:           decodeAs[APIKeyRevoked],
}

// decodeAs decodes into the value type the deciders produce, so that events compare equal
// whichever way they were obtained.
func decodeAs[T Event](data []byte) (Event, error) {
	var e T
	err := json.Unmarshal(data, &e)
	return e, err
}

// EventTypes lists every registered event type.
func EventTypes() []EventType {
	out := make([]EventType, 0, len(decoders))
	for t := range decoders {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// UnmarshalEvent decodes a stored event body. An unknown type or schema version is an error:
// a reader must never silently skip a fact.
func UnmarshalEvent(typ string, schemaVersion int, data []byte) (Event, error) {
	if schemaVersion != SchemaVersion {
		return nil, fmt.Errorf("domain: %s: unsupported schema version %d", typ, schemaVersion)
	}
	decode, ok := decoders[EventType(typ)]
	if !ok {
		return nil, fmt.Errorf("domain: unknown event type %q", typ)
	}
	e, err := decode(data)
	if err != nil {
		return nil, fmt.Errorf("domain: unmarshal %s: %w", typ, err)
	}
	return e, nil
}
