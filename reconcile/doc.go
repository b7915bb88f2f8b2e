// Package reconcile owns reconciliation: it compares one merchant's ledger with Toss's own
// records of that merchant (read with the merchant's key) over a range of KST days, names every
// difference, corrects from Toss's truth what Toss's truth settles, and keeps the rest on a
// needs-review list and every run's summary in the database. paymentctl reconcile runs it on
// demand, paymentd daily (Scheduler).
//
// # The two sides
//
// Ours: the merchant's payments touched in the range (checked out, approved or last changed on
// one of its days, from payment_orders) and every other order Toss lists in the range, each read
// from its event stream verified against its recorded head (many streams per query), folded with
// the domain into the transactions Toss should hold: the approval (PaymentApproved or
// PaymentApprovedAtPSP: paymentKey, amount, approvedAt and its transactionKey when known), every
// cancel (PaymentCanceled, or PaymentCanceledAtPSP for one made in Toss's console: transactionKey,
// amount, canceledAt) and every SettlementRecorded.
//
// Toss's: every transaction of the range (GET /v1/transactions, paged with startingAfter until a
// short page) and every settlement row sold from the first day until SettlementDays after the
// last (GET /v1/settlements by page, since a weekly or monthly cycle sells a transaction on a
// later day), capped at today.
//
// # Matching, both ways, per order
//
// Each transaction of ours is looked up among Toss's by transactionKey, then (an approval
// recorded without its key, as a read-back of a refunded payment records it) by paymentKey
// among Toss's approvals of the order. Then:
//
//   - matched: the transaction is on both sides with the same kind, paymentKey and amount. Only
//     transactions are counted as matched; settlement rows that agree are not counted.
//   - amount_mismatch: the same transaction with another amount, or an approval Toss holds of an
//     order not approved here for another amount than its checkout. Needs review.
//   - status_mismatch: a cancel Toss lists that the ledger does not have (canceled in Toss's
//     console: corrected by a read-back), or one transaction that is an approval on one side and
//     a cancel on the other, or recorded under another transactionKey or paymentKey (needs
//     review).
//   - missing_at_psp: an approval or cancel of ours, dated in the range, that Toss does not
//     list. Needs review: Toss's truth has nothing to book.
//   - missing_internal: an approval Toss lists for an order that is not approved here (FAILURE,
//     UNKNOWN, EXPIRED, EXECUTING or only checked out): corrected by a read-back. A transaction of
//     an order this merchant does not have at all has no stream to correct: needs review.
//   - duplicate: a second approval of one order: Toss lists an approval the order's approval here
//     is not, or two approvals. Needs review.
//   - settlement_missing: a settlement row Toss lists, paid out by today, that the ledger has not
//     recorded (corrected: the row is recorded), or a transaction of the range that Toss still
//     lists no settlement row for SettlementDays after it (needs review).
//   - settlement_mismatch: a recorded settlement that differs from Toss's row (amount, fee, VAT,
//     payout, dates), one Toss does not list, or a row whose fee, VAT excluded, differs from
//     round(|amount| × the merchant's contract fee rate) by more than 1 won. Needs review. The
//     rate is the one in force when the transaction happened (domain.TossFeeRateSet); without
//     one, fees are not checked. One won of slack absorbs Toss rounding each fee component.
//   - history_broken: not a difference with Toss but the reason none could be looked for: the
//     order's stream failed verification (it is recorded in broken_streams). Needs review.
//
// # Apply
//
// With Apply, what Toss's truth settles is booked, with actor "reconciliation": an approval Toss
// holds and a cancel made in Toss's console by reading the payment back (commands.Service.Sync:
// the same read-back and domain.Payment.DecideReadBack the webhook worker and recovery use, so a
// change is booked the same way whoever finds it first; its events say "reconciliation
// read-back"), a missing settlement row by recording Toss's row (RecordSettlementAs). Read-backs
// run first, so a settlement row of an approval just booked is recorded in the same run. The
// orders touched are then compared again: a difference gone is "applied", one still there
// "needs_review" (with why the correction failed). Every correction is idempotent (the deciders
// skip transaction keys already recorded), so a rerun applies nothing and reports them matched.
// Without Apply those differences are reported with resolution "none".
//
// # Needs review
//
// Differences that Toss's truth cannot resolve go to reconciliation_differences, one row per
// (merchant, order, category, transactionKey): a run opens or refreshes what it found and closes
// the open rows of the orders it compared that it no longer finds. GET
// /api/v1/payments?needsReview=true lists the payments with an open row. Every run's summary
// (counts per category, unresolved, applied, error) is a row of reconciliation_runs.
//
// An Engine is safe for concurrent use; two runs over the same orders at once are harmless
// (corrections are idempotent) but each reports what it saw.
package reconcile
