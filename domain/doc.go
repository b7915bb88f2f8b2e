// Package domain owns the payment rules: typed identifiers, money, the events of a payment, its
// state machine and the deciders that turn a command and the current state into new events.
//
// It is pure: no I/O, no clock (callers pass the time in), no SQL, no logging. A test enforces
// the import list (imports_test.go). Deciders validate and return events or a typed *Error;
// Payment.Apply only evolves state and never validates.
package domain
