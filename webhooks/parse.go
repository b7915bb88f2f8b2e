package webhooks

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Event types the inbox tells apart (toss-api.md §10.1).
const (
	EventPaymentStatusChanged = "PAYMENT_STATUS_CHANGED"
	EventDepositCallback      = "DEPOSIT_CALLBACK"
	EventCancelStatusChanged  = "CANCEL_STATUS_CHANGED"
)

// Row statuses of webhook_inbox.
const (
	StatusPending   = "pending"
	StatusProcessed = "processed"
	StatusRejected  = "rejected"
	StatusFailed    = "failed"
)

// Outcomes of rows stored as processed without any work.
const (
	OutcomeIgnoredEventType = "ignored event type"
	OutcomeNoOrderID        = "no orderId to sync"
	OutcomeUnknownOrder     = "unknown order"
)

// maxOrderIDLen is Toss's orderId limit (toss-api.md §11.7: 6–64 characters; only the upper
// bound is enforced, a real payment had a 2-character orderId).
const maxOrderIDLen = 64

// maxEventTypeLen bounds the event_type column; longer names are cut.
const maxEventTypeLen = 100

// delivery is what the body of a webhook says, as far as routing goes. Nothing in it is trusted.
type delivery struct {
	EventType string // "" when the body does not tell
	OrderID   string // "" when the body names no payment
	Status    string // StatusPending, StatusProcessed or StatusRejected
	Reason    string // reject reason (StatusRejected) or outcome (StatusProcessed)
}

func rejected(eventType, format string, args ...any) delivery {
	return delivery{EventType: eventType, Status: StatusRejected, Reason: fmt.Sprintf(format, args...)}
}

// classify reads a webhook body. The accepted shapes (toss-api.md §10.2):
//
//   - PAYMENT_STATUS_CHANGED {eventType, createdAt, data: Payment}: needs data.orderId.
//   - DEPOSIT_CALLBACK flat {createdAt, secret, status, transactionKey, orderId} (no
//     eventType), the same wrapped in data, or either with eventType "DEPOSIT_CALLBACK": needs
//     an orderId. The secret is not checked: the worker reads the payment back anyway.
//   - CANCEL_STATUS_CHANGED {eventType, createdAt, data: Cancel}: data must be an object. A
//     Cancel carries no orderId in Toss's docs, so such a delivery is stored as processed with
//     nothing to do; if data does name an orderId, that payment is read back.
//   - Any other eventType (BILLING_DELETED, payout.changed, …): stored as processed, "ignored
//     event type"; answering anything but 200 would make Toss resend it for days.
//
// Anything else (not one JSON object, a payment event without an orderId, no eventType and no
// deposit-callback fields) is rejected.
func classify(body []byte) delivery {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil || top == nil {
		return rejected("", "the body must be one JSON object")
	}
	eventType, present, ok := stringField(top, "eventType")
	switch {
	case !ok:
		return rejected("", "eventType must be a string")
	case len(eventType) > maxEventTypeLen:
		eventType = truncateUTF8(eventType, maxEventTypeLen)
	}
	// PostgreSQL text cannot hold NUL; the raw body keeps the original.
	eventType = strings.ReplaceAll(eventType, "\x00", "\uFFFD")
	if !present || eventType == "" {
		return classifyUntyped(top)
	}
	switch eventType {
	case EventPaymentStatusChanged:
		data, ok := objectField(top, "data")
		if !ok {
			return rejected(eventType, "%s needs data: the Payment object", eventType)
		}
		return routed(eventType, data, "data.orderId")
	case EventDepositCallback:
		if data, ok := objectField(top, "data"); ok {
			return routed(eventType, data, "data.orderId")
		}
		return routed(eventType, top, "orderId")
	case EventCancelStatusChanged:
		data, ok := objectField(top, "data")
		if !ok {
			return rejected(eventType, "%s needs data: the Cancel object", eventType)
		}
		if _, present, _ := stringField(data, "orderId"); present {
			return routed(eventType, data, "data.orderId")
		}
		return delivery{EventType: eventType, Status: StatusProcessed, Reason: OutcomeNoOrderID}
	}
	return delivery{EventType: eventType, Status: StatusProcessed, Reason: OutcomeIgnoredEventType}
}

// classifyUntyped handles a body without eventType: only DEPOSIT_CALLBACK is sent that way,
// flat or wrapped in data.
func classifyUntyped(top map[string]json.RawMessage) delivery {
	if isDepositCallback(top) {
		return routed(EventDepositCallback, top, "orderId")
	}
	if data, ok := objectField(top, "data"); ok && isDepositCallback(data) {
		return routed(EventDepositCallback, data, "data.orderId")
	}
	return rejected("", "unknown webhook shape: no eventType and no DEPOSIT_CALLBACK fields (orderId with secret, status or transactionKey)")
}

func isDepositCallback(obj map[string]json.RawMessage) bool {
	if _, present, _ := stringField(obj, "orderId"); !present {
		return false
	}
	for _, k := range []string{"secret", "status", "transactionKey"} {
		if _, ok := obj[k]; ok {
			return true
		}
	}
	return false
}

// routed is a pending delivery for obj's orderId (named field in messages), or a rejection.
func routed(eventType string, obj map[string]json.RawMessage, field string) delivery {
	id, present, ok := stringField(obj, "orderId")
	switch {
	case !present:
		return rejected(eventType, "%s without %s", eventType, field)
	case !ok:
		return rejected(eventType, "%s must be a string", field)
	case strings.TrimSpace(id) == "":
		return rejected(eventType, "%s is empty", field)
	case len(id) > maxOrderIDLen:
		return rejected(eventType, "%s is longer than %d characters", field, maxOrderIDLen)
	case strings.ContainsFunc(id, unicode.IsControl):
		return rejected(eventType, "%s holds control characters", field)
	}
	return delivery{EventType: eventType, OrderID: id, Status: StatusPending}
}

// stringField reads obj[key]: present says the key exists and is not null; ok is false when it
// is present but not a string.
func stringField(obj map[string]json.RawMessage, key string) (s string, present, ok bool) {
	raw, found := obj[key]
	if !found || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return "", false, true
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", true, false
	}
	return s, true, true
}

// objectField reads obj[key] as a JSON object; ok is false when it is absent or not an object.
func objectField(obj map[string]json.RawMessage, key string) (map[string]json.RawMessage, bool) {
	raw, found := obj[key]
	if !found {
		return nil, false
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return nil, false
	}
	return m, true
}

func truncateUTF8(s string, n int) string {
	for len(s) > n {
		_, size := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-size]
	}
	return s
}
