// Package domain owns the payment rules: typed identifiers, money, the events of a payment, its
// state machine and the deciders that turn a command and the current state into new events.
//
// It is pure: no I/O, no clock (callers pass the time in), no SQL, no logging. A test enforces
// the import list (imports_test.go). Deciders validate and return events or a typed *Error;
// Payment.Apply only evolves state and never validates.
//
// One file per fact: events.go (every event type and the registry of their names), payment.go
// (a payment's state and fold), checkout.go, confirm.go, cancel.go, settlement.go, readback.go
// (resolving a payment whose outcome is unknown from the PSP's truth), history.go (the audit of
// a stored stream against the state machine), merchant.go, ledger.go (posting rules), money.go,
// ids.go, errors.go.
//
// Words: a payment is "settled" when Toss settles it (SettlementRecorded); a payment whose PSP
// call ended without a known outcome is "resolved" when that outcome is learned.
package domain
