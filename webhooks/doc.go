// Package webhooks owns the Toss webhook inbox: the POST /webhooks/toss handler (Inbox), the
// webhook_inbox table and the worker that turns deliveries into read-backs (Worker).
//
// Payment webhooks are unsigned (toss-api.md §10.3), so a body is never trusted: it is stored
// raw for audit and only its orderId is used, to know which payment to read back from Toss.
// The worker calls Syncer.Recover, which reads the payment by orderId and records Toss's truth.
// Duplicates and out-of-order deliveries (a DONE and an ABORTED 50 ms apart, §10.5) therefore
// converge: every read-back sees the same truth, and a payment whose outcome is known is left
// as it is.
//
// # Answers
//
//   - 200: the delivery is stored (or was already: the dedupe key decides), or spooled to disk
//     because the database did not take it within InboxConfig.StoreTimeout. Unknown event
//     types are stored as processed and answered 200 too: anything else makes Toss resend for
//     days (§10.4).
//   - 400 INVALID_WEBHOOK: the body is malformed (not one JSON object, no orderId on a payment
//     event, an unknown shape). It is stored as rejected first.
//   - 413 BODY_TOO_LARGE (over 1 MiB) and 405 (not POST): not stored.
//   - 503 UNAVAILABLE: the only non-2xx answer for a well-formed webhook. It comes only when
//     neither the database nor the spool file could take the delivery, so Toss must resend it.
//
// The handler never answers 500.
//
// # Delivery guarantees
//
// At least once into webhook_inbox, exactly once per dedupe key: the key is the
// tosspayments-webhook-transmission-id header (Toss resends a failed delivery under the same
// id), or "sha256:" and the hex SHA-256 of the body when the header is absent. The spool is
// drained by the worker at the start of each ProcessOnce; an insert that timed out in the
// handler may still land later (the server finishes it), and the dedupe key absorbs the repeat.
//
// Processing is at least once per row: the worker claims rows with a lease, so a crash only
// delays a row until its lease ends. Recover is idempotent, so a repeat is harmless.
package webhooks
