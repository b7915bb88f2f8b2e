package domain

import (
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/shopspring/decimal"
)

// Every event type of the system and the registry of their names. Events are facts in the
// past tense: their JSON bodies are the stored schema, so fields are only ever added, and a
// type is never renamed.

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

// Payment events, stream payment-<orderId>.

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

// EventRecoveryExhausted: the recovery sweeper gave up on a payment; a person must look at it.
const EventRecoveryExhausted EventType = "RecoveryExhausted"

// RecoveryExhausted leaves the payment UNKNOWN and marks it as needing review.
type RecoveryExhausted struct {
	EventHeader
	Attempts  int    `json:"attempts"`
	LastError string `json:"lastError"`
}

func (RecoveryExhausted) EventType() EventType { return EventRecoveryExhausted }

// Cancel and settlement events. A cancel (refund) is requested, then canceled, rejected or left
// unknown; one cancel at a time, so concurrent cancels can never exceed the balance.
const (
	EventCancelRequested      EventType = "CancelRequested"
	EventPaymentCanceled      EventType = "PaymentCanceled"
	EventCancelRejected       EventType = "CancelRejected"
	EventCancelOutcomeUnknown EventType = "CancelOutcomeUnknown"
	// EventCancelRetried: the PSP refused the pending cancel's call without executing it, so
	// the cancel goes on under a new idempotency key.
	EventCancelRetried      EventType = "CancelRetried"
	EventSettlementRecorded EventType = "SettlementRecorded"
	// EventCancelRecoveryExhausted: recovery gave up on a cancel whose outcome is unknown; the
	// payment needs review (a person checks with Toss whether the buyer was refunded).
	EventCancelRecoveryExhausted EventType = "CancelRecoveryExhausted"
)

// CancelRecoveryExhausted marks the payment as needing review; the cancel stays pending.
type CancelRecoveryExhausted struct {
	EventHeader
	CancelID  CancelID `json:"cancelId"`
	Attempts  int      `json:"attempts"`
	LastError string   `json:"lastError"`
}

func (CancelRecoveryExhausted) EventType() EventType { return EventCancelRecoveryExhausted }
func (e CancelRecoveryExhausted) cancelID() CancelID { return e.CancelID }

// CancelRequested: a cancel was accepted and the PSP is about to be called with
// PSPIdempotencyKey. Unlike a confirm, a cancel keeps its key until its outcome is known: a
// repeated cancel under a new key could refund twice.
type CancelRequested struct {
	EventHeader
	CancelID          CancelID        `json:"cancelId"`
	Amount            decimal.Decimal `json:"amount"`
	Reason            string          `json:"reason"`
	PSPIdempotencyKey string          `json:"pspIdempotencyKey"`
}

// PaymentCanceled: the PSP refunded Amount. BalanceAfter is what is left to cancel.
type PaymentCanceled struct {
	EventHeader
	CancelID       CancelID        `json:"cancelId"`
	Amount         decimal.Decimal `json:"amount"`
	TransactionKey string          `json:"transactionKey"`
	CanceledAt     time.Time       `json:"canceledAt"`
	BalanceAfter   decimal.Decimal `json:"balanceAfter"`
}

// CancelRejected: the PSP refused the cancel for good; the balance is unchanged.
type CancelRejected struct {
	EventHeader
	CancelID CancelID `json:"cancelId"`
	Code     string   `json:"code"`
	Message  string   `json:"message"`
}

// CancelOutcomeUnknown: the cancel call ended without a known result; recovery reads it back.
type CancelOutcomeUnknown struct {
	EventHeader
	CancelID CancelID `json:"cancelId"`
	Code     string   `json:"code"`
	Message  string   `json:"message"`
}

// SettlementRecorded: a row of Toss's settlement report for one of the payment's transactions
// (the approval, or a cancel with negative amounts). Recorded once per TransactionKey.
type SettlementRecorded struct {
	EventHeader
	TransactionKey string          `json:"transactionKey"`
	PaymentKey     PaymentKey      `json:"paymentKey"`
	SoldDate       string          `json:"soldDate"`    // yyyy-MM-dd
	PaidOutDate    string          `json:"paidOutDate"` // yyyy-MM-dd
	Amount         decimal.Decimal `json:"amount"`
	Fee            decimal.Decimal `json:"fee"` // total fee, VAT included
	VAT            decimal.Decimal `json:"vat"`
	PayOutAmount   decimal.Decimal `json:"payOutAmount"`
}

// CancelRetried: the PSP refused the pending cancel's last call without executing it (Code says
// why, e.g. a cancel too soon after the previous one) and the cancel continues as attempt
// Attempt under PSPIdempotencyKey. Only a refusal that provably executed nothing allows a new
// key: after an unknown outcome the cancel keeps its key, since a new one could refund twice.
type CancelRetried struct {
	EventHeader
	CancelID          CancelID `json:"cancelId"`
	Attempt           int      `json:"attempt"`
	PSPIdempotencyKey string   `json:"pspIdempotencyKey"`
	Code              string   `json:"code"`
	Message           string   `json:"message"`
}

func (CancelRetried) EventType() EventType { return EventCancelRetried }

func (e CancelRetried) cancelID() CancelID        { return e.CancelID }
func (e CancelRejected) cancelID() CancelID       { return e.CancelID }
func (e CancelOutcomeUnknown) cancelID() CancelID { return e.CancelID }

func (CancelRequested) EventType() EventType      { return EventCancelRequested }
func (PaymentCanceled) EventType() EventType      { return EventPaymentCanceled }
func (CancelRejected) EventType() EventType       { return EventCancelRejected }
func (CancelOutcomeUnknown) EventType() EventType { return EventCancelOutcomeUnknown }
func (SettlementRecorded) EventType() EventType   { return EventSettlementRecorded }

// Events recorded from Toss's truth about what this ledger did not do itself: found by a
// read-back (recovery, the webhook worker) or by reconciliation. Reason says how.
const (
	EventPaymentApprovedAtPSP EventType = "PaymentApprovedAtPSP"
	EventPaymentCanceledAtPSP EventType = "PaymentCanceledAtPSP"
)

// PaymentApprovedAtPSP: Toss holds an approval of this payment that the ledger had not recorded
// as such: the payment was NOT_STARTED, FAILURE or EXPIRED here (confirmed at Toss directly, or
// refused here while Toss approved it). It is booked like PaymentApproved.
type PaymentApprovedAtPSP struct {
	EventHeader
	PaymentKey         PaymentKey      `json:"paymentKey"`
	ApprovedAt         time.Time       `json:"approvedAt"`
	Method             string          `json:"method"`
	TotalAmount        decimal.Decimal `json:"totalAmount"`
	LastTransactionKey string          `json:"lastTransactionKey"`
	PreviousStatus     Status          `json:"previousStatus"`
	Reason             string          `json:"reason"`
}

// PaymentCanceledAtPSP: Toss shows a cancel (refund) of this payment that the ledger never
// requested: made in Toss's merchant console. It is booked like PaymentCanceled. TransactionKey
// is Toss's key of the cancel, recorded once.
type PaymentCanceledAtPSP struct {
	EventHeader
	TransactionKey string          `json:"transactionKey"`
	Amount         decimal.Decimal `json:"amount"`
	CanceledAt     time.Time       `json:"canceledAt"`
	BalanceAfter   decimal.Decimal `json:"balanceAfter"`
	CancelReason   string          `json:"cancelReason"`
	Reason         string          `json:"reason"`
}

func (PaymentApprovedAtPSP) EventType() EventType { return EventPaymentApprovedAtPSP }
func (PaymentCanceledAtPSP) EventType() EventType { return EventPaymentCanceledAtPSP }

// Booked is the money fact an event stands for: PaymentApprovedAtPSP moves money as a
// PaymentApproved, PaymentCanceledAtPSP as a PaymentCanceled (cancel id "psp:<transactionKey>");
// every other event is itself. The books use it, so a correction found at the PSP moves money
// exactly like the fact it records.
func Booked(e Event) Event {
	switch v := e.(type) {
	case PaymentApprovedAtPSP:
		return PaymentApproved{EventHeader: v.EventHeader, PaymentKey: v.PaymentKey, ApprovedAt: v.ApprovedAt,
			Method: v.Method, TotalAmount: v.TotalAmount, LastTransactionKey: v.LastTransactionKey}
	case PaymentCanceledAtPSP:
		return PaymentCanceled{EventHeader: v.EventHeader, CancelID: CancelID("psp:" + v.TransactionKey), Amount: v.Amount,
			TransactionKey: v.TransactionKey, CanceledAt: v.CanceledAt, BalanceAfter: v.BalanceAfter}
	}
	return e
}

// Merchant events, stream merchant-<merchantId>.

// Merchant event types.
const (
	EventMerchantRegistered    EventType = "MerchantRegistered"
	EventTossCredentialsSet    EventType = "TossCredentialsSet"
	EventCommissionRateChanged EventType = "CommissionRateChanged"
	EventAPIKeyIssued          EventType = "ApiKeyIssued"
	EventAPIKeyRevoked         EventType = "ApiKeyRevoked"
	EventTossFeeRateSet        EventType = "TossFeeRateSet"
	// Merchant notifications (webhooks to the merchant): where its payments' events are POSTed
	// and the secret that signs them.
	EventNotificationEndpointSet     EventType = "NotificationEndpointSet"
	EventNotificationSecretRotated   EventType = "NotificationSecretRotated"
	EventNotificationEndpointRemoved EventType = "NotificationEndpointRemoved"
)

// MerchantHeader is the part every merchant event shares.
type MerchantHeader struct {
	MerchantID MerchantID `json:"merchantId"`
	At         time.Time  `json:"at"`
}

// Header implements Event: merchant events have no order.
func (h MerchantHeader) Header() EventHeader { return EventHeader{MerchantID: h.MerchantID, At: h.At} }

// MerchantRegistered: a merchant was created.
type MerchantRegistered struct {
	MerchantHeader
	Name string `json:"name"`
}

// TossCredentialsSet: the merchant's Toss secret key was set or replaced. The key itself is
// stored encrypted under CredentialID outside the event log; KeyHint (its prefix and last four
// characters) lets people tell keys apart.
type TossCredentialsSet struct {
	MerchantHeader
	CredentialID string  `json:"credentialId"`
	KeyHint      string  `json:"keyHint"`
	Mode         KeyMode `json:"mode"`
}

// CommissionRateChanged: the platform's share of each approved line from At on, as a fraction
// (0.1 = 10%). The ledger books every order at the rate in force when its checkout was created.
type CommissionRateChanged struct {
	MerchantHeader
	Rate decimal.Decimal `json:"rate"`
}

// APIKeyIssued: an API key was issued. SecretHash is the hex SHA-256 of the key's secret part.
// Replaces names the key it rotates, if any.
type APIKeyIssued struct {
	MerchantHeader
	KeyID      APIKeyID `json:"keyId"`
	Mode       KeyMode  `json:"mode"`
	SecretHash string   `json:"secretHash"`
	Scopes     []Scope  `json:"scopes"`
	Replaces   APIKeyID `json:"replaces,omitempty"`
}

// APIKeyRevoked: the key stops working at EffectiveAt: now for a revocation, later for a
// rotation's grace period.
type APIKeyRevoked struct {
	MerchantHeader
	KeyID       APIKeyID  `json:"keyId"`
	EffectiveAt time.Time `json:"effectiveAt"`
	Reason      string    `json:"reason"`
}

// TossFeeRateSet: the fee rate of the merchant's contract with Toss from EffectiveFrom on, as a
// fraction of the amount, VAT excluded (0.0341 = 3.41%). It overrides what earlier events said
// for that time on, so a rate entered wrongly is corrected by setting the right one from the same
// moment. Reconciliation checks every settlement row's fee against the rate in force when its
// transaction happened; a transaction without one is not checked.
type TossFeeRateSet struct {
	MerchantHeader
	Rate          decimal.Decimal `json:"rate"`
	EffectiveFrom time.Time       `json:"effectiveFrom"`
}

// NotificationEndpointSet: the merchant's payment events are POSTed to URL from now on (or, when
// an endpoint was set already, to URL instead of the old one, from where delivery stands). The
// signing secret is stored sealed outside the log under SecretID, like a Toss key; SecretHint
// (its prefix and last four characters) lets people tell secrets apart. A changed URL keeps the
// secret: SecretID is then the current one.
type NotificationEndpointSet struct {
	MerchantHeader
	URL        string `json:"url"`
	SecretID   string `json:"secretId"`
	SecretHint string `json:"secretHint"`
}

// NotificationSecretRotated: deliveries are signed with the secret stored under SecretID from
// now on, and also with the previous one until PreviousValidUntil, so the merchant can switch its
// receiver over without refusing a delivery.
type NotificationSecretRotated struct {
	MerchantHeader
	SecretID           string    `json:"secretId"`
	SecretHint         string    `json:"secretHint"`
	PreviousSecretID   string    `json:"previousSecretId"`
	PreviousValidUntil time.Time `json:"previousValidUntil"`
}

// NotificationEndpointRemoved: nothing more is POSTed to the merchant; its secret is retired.
type NotificationEndpointRemoved struct {
	MerchantHeader
}

func (MerchantRegistered) EventType() EventType { return EventMerchantRegistered }
func (NotificationEndpointSet) EventType() EventType {
	return EventNotificationEndpointSet
}
func (NotificationSecretRotated) EventType() EventType {
	return EventNotificationSecretRotated
}
func (NotificationEndpointRemoved) EventType() EventType {
	return EventNotificationEndpointRemoved
}
func (TossCredentialsSet) EventType() EventType    { return EventTossCredentialsSet }
func (CommissionRateChanged) EventType() EventType { return EventCommissionRateChanged }
func (APIKeyIssued) EventType() EventType          { return EventAPIKeyIssued }
func (APIKeyRevoked) EventType() EventType         { return EventAPIKeyRevoked }
func (TossFeeRateSet) EventType() EventType        { return EventTossFeeRateSet }

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
	EventCheckoutCreated:             decodeAs[CheckoutCreated],
	EventConfirmationStarted:         decodeAs[ConfirmationStarted],
	EventPaymentApproved:             decodeAs[PaymentApproved],
	EventPaymentRejected:             decodeAs[PaymentRejected],
	EventPaymentOutcomeUnknown:       decodeAs[PaymentOutcomeUnknown],
	EventPaymentExpired:              decodeAs[PaymentExpired],
	EventRecoveryExhausted:           decodeAs[RecoveryExhausted],
	EventCancelRequested:             decodeAs[CancelRequested],
	EventPaymentCanceled:             decodeAs[PaymentCanceled],
	EventCancelRejected:              decodeAs[CancelRejected],
	EventCancelOutcomeUnknown:        decodeAs[CancelOutcomeUnknown],
	EventCancelRetried:               decodeAs[CancelRetried],
	EventSettlementRecorded:          decodeAs[SettlementRecorded],
	EventCancelRecoveryExhausted:     decodeAs[CancelRecoveryExhausted],
	EventPaymentApprovedAtPSP:        decodeAs[PaymentApprovedAtPSP],
	EventPaymentCanceledAtPSP:        decodeAs[PaymentCanceledAtPSP],
	EventMerchantRegistered:          decodeAs[MerchantRegistered],
	EventTossCredentialsSet:          decodeAs[TossCredentialsSet],
	EventCommissionRateChanged:       decodeAs[CommissionRateChanged],
	EventAPIKeyIssued:                decodeAs[APIKeyIssued],
	EventAPIKeyRevoked:               decodeAs[APIKeyRevoked],
	EventTossFeeRateSet:              decodeAs[TossFeeRateSet],
	EventNotificationEndpointSet:     decodeAs[NotificationEndpointSet],
	EventNotificationSecretRotated:   decodeAs[NotificationSecretRotated],
	EventNotificationEndpointRemoved: decodeAs[NotificationEndpointRemoved],
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
