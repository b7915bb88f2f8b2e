package natsbus

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/eventstore"
)

// The PAYMENTS stream and its subjects. Subject tokens are safe by construction: merchant and
// order ids hold only A-Z a-z 0-9 - _ (domain.ParseMerchantID, domain.ParseOrderID), event
// types are Go identifiers.
const (
	// StreamPayments is the JetStream stream of integration events.
	StreamPayments = "PAYMENTS"
	// SubjectRoot prefixes every subject of the stream; v1 is the envelope's version (Event).
	SubjectRoot = "payments.v1"
)

// Subject is where an event of order o of merchant m is published.
func Subject(m domain.MerchantID, o domain.OrderID, t domain.EventType) string {
	return SubjectRoot + "." + string(m) + "." + string(o) + "." + string(t)
}

// OrderSubjects matches every event of one order.
func OrderSubjects(m domain.MerchantID, o domain.OrderID) string {
	return SubjectRoot + "." + string(m) + "." + string(o) + ".>"
}

// MerchantSubjects matches every event of one merchant.
func MerchantSubjects(m domain.MerchantID) string {
	return SubjectRoot + "." + string(m) + ".>"
}

// Event is the envelope of every message on the PAYMENTS stream: the integration contract,
// version 1, documented field by field in docs/events.md. Data is the domain event's own JSON
// exactly as the event store holds it; its shape is the event type's at SchemaVersion.
type Event struct {
	ID            uuid.UUID         `json:"id"` // also the Nats-Msg-Id header
	Type          domain.EventType  `json:"type"`
	SchemaVersion int               `json:"schemaVersion"`
	MerchantID    domain.MerchantID `json:"merchantId"`
	OrderID       domain.OrderID    `json:"orderId"`
	// StreamVersion is the event's 1-based place in its order's history: a consumer that saw
	// version n of an order has seen every earlier one (per order, messages are in order).
	StreamVersion int64           `json:"streamVersion"`
	RecordedAt    time.Time       `json:"recordedAt"` // KST, RFC 3339 with microseconds
	CorrelationID uuid.UUID       `json:"correlationId"`
	CausationID   uuid.UUID       `json:"causationId"`
	Actor         string          `json:"actor"`
	Data          json.RawMessage `json:"data"`
}

// Subject is where e is published.
func (e Event) Subject() string { return Subject(e.MerchantID, e.OrderID, e.Type) }

// ErrNotIntegration marks a recorded event that is not published: it belongs to a merchant's
// own stream, not to a payment.
var ErrNotIntegration = errors.New("natsbus: not an integration event")

// FromRecorded builds the envelope of a recorded payment event. It returns ErrNotIntegration
// for events of other streams, and an error for a payment event it cannot address (a bad
// merchant or order id would make a wrong subject).
func FromRecorded(r eventstore.RecordedEvent) (Event, error) {
	id, ok := strings.CutPrefix(r.StreamID, domain.StreamName(""))
	if !ok {
		return Event{}, ErrNotIntegration
	}
	order, err := domain.ParseOrderID(id)
	if err != nil {
		return Event{}, fmt.Errorf("natsbus: event %s of stream %q: %w", r.ID, r.StreamID, err)
	}
	merchant, err := domain.ParseMerchantID(r.Metadata.MerchantID)
	if err != nil {
		return Event{}, fmt.Errorf("natsbus: event %s of stream %q: %w", r.ID, r.StreamID, err)
	}
	if !json.Valid(r.Data) {
		return Event{}, fmt.Errorf("natsbus: event %s of stream %q: data is not JSON", r.ID, r.StreamID)
	}
	return Event{
		ID: r.ID, Type: domain.EventType(r.Type), SchemaVersion: r.SchemaVersion,
		MerchantID: merchant, OrderID: order, StreamVersion: r.Version,
		RecordedAt:    r.RecordedAt.In(domain.KST),
		CorrelationID: r.Metadata.CorrelationID, CausationID: r.Metadata.CausationID,
		Actor: r.Metadata.Actor, Data: json.RawMessage(r.Data),
	}, nil
}

// Decode reads a message body written by the relay, strictly: unknown fields are an error, so
// a consumer built on this package notices a contract it does not know.
func Decode(body []byte) (Event, error) {
	var e Event
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		return Event{}, fmt.Errorf("natsbus: decode event: %w", err)
	}
	if e.ID == uuid.Nil || e.Type == "" || e.MerchantID == "" || e.OrderID == "" || e.StreamVersion < 1 {
		return Event{}, fmt.Errorf("natsbus: decode event: id, type, merchantId, orderId and streamVersion are required")
	}
	return e, nil
}

// Message is e as the relay publishes it: the JSON envelope with Nats-Msg-Id = e.ID.
func (e Event) Message() (*nats.Msg, error) {
	body, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("natsbus: encode event %s: %w", e.ID, err)
	}
	msg := nats.NewMsg(e.Subject())
	msg.Data = body
	msg.Header.Set(jetstream.MsgIDHeader, e.ID.String())
	return msg, nil
}
