// Package webhooks owns the Toss webhook inbox: the POST /webhooks/toss/{merchantId} handler
// (Inbox), the webhook_inbox and webhook_order_syncs tables and the worker that turns
// deliveries into read-backs (Worker).
//
// Payment webhooks are unsigned (toss-api.md §10.3), so a body is never trusted: it is stored
// for audit and only its orderId is used, to know which payment to read back from Toss. The
// worker calls Syncer.Sync, which reads the payment by orderId and records Toss's truth.
// Duplicates and out-of-order deliveries (a DONE and an ABORTED 50 ms apart, §10.5) therefore
// converge: every read-back sees the same truth, and a payment whose outcome is known is left
// as it is.
//
// # Per-merchant URL
//
// Each merchant has its own Toss account, and Toss delivers each account's webhooks to the URL
// registered for it (§10.1), so each merchant registers /webhooks/toss/{merchantId}. The Inbox
// is mounted with the /webhooks/toss prefix stripped and reads the merchant from the one path
// segment left. The merchant is stored on the row (merchant_id), and the worker reads an order
// back only for its owner (commands.ResolveOptions.Merchant): a webhook at merchant A's URL
// naming merchant B's order is processed as "unknown order" without any call to Toss. Rows
// stored before per-merchant URLs have no merchant and are read back without that check.
//
// # What is kept
//
// Anyone can post to the URL, so the inbox keeps only what Toss could have sent:
//
//   - From allowed addresses: with InboxConfig.AllowedIPs set, only those. The client address
//     is the TCP peer (the request's RemoteAddr). X-Forwarded-For is never read: anyone can
//     write it. Behind a proxy or load balancer every request comes from the proxy, so the
//     restriction must be configured there instead (and AllowedIPs left empty or set to the
//     proxy).
//   - At a bounded rate: InboxConfig.Rate and Burst per client address (IPv6 per /64). Toss
//     resends a delivery that is not answered 200 (§10.4), so a real webhook caught in a burst
//     arrives again later; an attacker's flood is answered without touching the database.
//   - Of a bounded size: a body over InboxConfig.MaxBodyBytes (64 KiB by default; Toss's
//     payloads are a few KiB at most) or headers over 16 KiB are not stored.
//   - Whole only when it needs work: a pending row keeps its whole body. A rejected row, and a
//     row processed on arrival (an ignored event type, a cancel without orderId), keeps its first
//     KeptPrefixBytes (4 KiB) and, in body_length and body_sha256, the length and SHA-256 of the
//     whole body: evidence for audit without the bytes.
//   - For a limited time: see Retention below.
//
// # Answers
//
// In the order they are checked:
//
//   - 403 FORBIDDEN: AllowedIPs is set and the client address is not in it. Not stored.
//   - 429 RATE_LIMITED, with Retry-After: the client address is over its rate. Not stored.
//   - 405 METHOD_NOT_ALLOWED (not POST). Not stored.
//   - 404 NOT_FOUND: the path is not exactly one segment, or the segment is not a valid
//     merchant id (domain.ParseMerchantID). Not stored.
//   - 431 HEADERS_TOO_LARGE and 413 BODY_TOO_LARGE: not stored.
//   - 404 NOT_FOUND: InboxConfig.MerchantExists says there is no such merchant. Not stored. If
//     MerchantExists fails (the registry is unreachable), the delivery is taken under the
//     unverified id rather than lost: the worker's merchant check makes it harmless, since no
//     payment belongs to a merchant that does not exist.
//   - 200: the delivery is stored (or was already: the dedupe key decides), or spooled to disk
//     because the database did not take it within InboxConfig.StoreTimeout. Unknown event
//     types are stored as processed and answered 200 too: anything else makes Toss resend for
//     days (§10.4).
//   - 400 INVALID_WEBHOOK: the body is malformed (not one JSON object, no orderId on a payment
//     event, an unknown shape). It is stored as rejected first, cut to its prefix.
//   - 503 UNAVAILABLE: the only non-2xx answer for a well-formed webhook at a known merchant's
//     URL from an allowed address within its rate. It comes only when neither the database nor
//     the spool file could take the delivery, so Toss must resend it.
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
// Processing is at least once per row: the worker claims rows with a short lease
// (WorkerConfig.Lease, 10 s by default; leased_by and next_attempt_at are its token), renewed
// while the row's order is read back and checked on the row's last write (internal/lease), so a
// crash only delays a row until its lease runs out, seconds. Sync is idempotent, so a repeat is
// harmless.
//
// # One read-back per order per interval
//
// Each webhook names an order, and each read-back is a call to Toss, so a flood of webhooks
// naming one order must not become a flood of calls. Before reading an order back, a worker
// takes the order's gate in webhook_order_syncs: one statement that inserts (order_id, now())
// or moves an existing synced_at to now() only if it is older than WorkerConfig.SyncInterval
// (5 s by default), and returns a row only when it did. The primary key makes concurrent
// takers, in any worker of any instance, wait for each other, so exactly one wins per interval.
// The winner reads the order back once and records the result on its claimed rows and on the
// other pending rows of the order (same merchant scope) stored before the read-back started.
// (Rows at several merchants' URLs each get a Sync, but Sync checks the owner before it
// calls Toss, so only the owner's costs a read-back; rows without a merchant reuse the
// owner's answer.) A loser gives its rows back unattempted (attempts is not counted) and due
// when the gate opens; then one read-back resolves them together. A delivery at another
// merchant's URL takes the gate too, so it can delay the owner's rows by one interval, never
// drop them.
//
// This cannot lose a status change. Webhooks carry no truth of their own; they only say "look
// again". A row that lost the gate is read back after the gate opens, which is after its
// delivery, so that read-back sees Toss's newest state, including whatever change the webhook
// reported. A row resolved with another row's read-back was stored before that read-back
// started, so the same holds. If a read-back fails, its rows back off and retry as before, and
// the recovery sweeper remains the backstop for any payment whose outcome stays unknown.
//
// # Retention
//
// Processed, rejected and failed rows older than WorkerConfig.Retention (720 h by default, by
// received_at) are deleted by the worker: when Run starts and every few minutes after, beside
// the batches, in statements of 1000 rows each (each its own short transaction, so none holds
// back vacuum or the event store's readers) repeated until none is left. Pending rows are never
// deleted, however old. Gates older than SyncInterval are deleted the same way: an open gate
// means the same as none.
//
// # Logging
//
// NewInbox and NewWorker add their own component attribute (webhook-inbox, webhook-worker):
// pass them a plain logger.
package webhooks
