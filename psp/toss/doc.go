// Package toss is the ledger's client for the Toss Payments core API v1 (version 2022-11-16):
// confirming and canceling payments, reading a payment back, and listing transactions and
// settlements for reconciliation.
//
// It owns the wire format (authentication, idempotency keys, JSON shapes, including the several
// shapes Toss has been seen to send for the same field) and the classification of every failure
// into one of three classes, so callers decide what to do without parsing codes:
//
//   - ClassUnknownOutcome: the call may or may not have taken effect. Retry under the same
//     idempotency key and/or read the payment back.
//   - ClassFinal: Toss refused the operation for a reason of the buyer or the payment. Nothing
//     was done and repeating the call will not change that.
//   - ClassMerchantConfig: our own setup or request is wrong. Alert, never retry.
//   - ClassNotExecuted: refused before processing, for a reason that passes (a cancel within a
//     second of the previous one). Try again later under a new idempotency key: Toss replays
//     the refusal under the old one.
//
// Amounts are decimal.Decimal end to end, never float64: responses accept JSON numbers and
// strings, and requests send JSON numbers written from the decimal's exact text.
//
// The client never retries, never logs, and never puts the secret key into an error; an observer
// (WithObserver) is told of every HTTP call, so metrics are kept outside this package. A Client is
// safe for concurrent use. Every method honours its context; on top of it each call gets its own
// deadline (see WithTimeouts). A call that fails because the context ended, or for any transport
// reason, returns an *Error of class ClassUnknownOutcome, since the request may have reached Toss.
package toss
