// Package tosssim is a Toss Payments core API (v1, version 2022-11-16) server for tests and
// local runs. It keeps its own record of truth (payments, their cancels and the transaction
// rows) and answers with the wire shapes and error codes of /work/shared/toss-api.md,
// following its simulator checklist (§12). New keeps that truth in memory; Open also saves it
// in PostgreSQL, so a restarted simulator still knows what Toss's side knew (see Persistence).
//
// # Simulated
//
//   - Basic auth with "<secretKey>:" (§1): a missing or undecodable header, or one without
//     ':', is 403 INCORRECT_BASIC_AUTH_FORMAT; a key that is not accepted is 401
//     UNAUTHORIZED_KEY (§11.1). The password part is ignored.
//   - TossPayments-Test-Code with a test_ key on every /v1 route: the named error is answered
//     with its §8 status and nothing executes. Live keys ignore the header.
//   - Idempotency-Key on POST /v1 routes (§2): matched on key, secret key, method and path,
//     never on the body; the first business answer (status and body) is kept for
//     Config.IdempotencyTTL and replayed byte for byte; a repeat while the first is running is
//     409 IDEMPOTENT_REQUEST_PROCESSING; keys over 300 characters are 400
//     INVALID_IDEMPOTENCY_KEY; the header is ignored on GET.
//   - Buyer authentication (§3 steps 2–3) is replaced by POST /sim/v1/sessions (or
//     Simulator.CreateSession), which leaves an IN_PROGRESS payment and answers 201
//     {"paymentKey":"…"}. Its body is {"orderId", "amount" (number or decimal string),
//     "orderName", "method"?, "confirmError"?, "confirmErrorTimes"?, "confirmErrorOutcome"?,
//     "settlementFeeRate"?}; see SessionRequest. It takes no auth.
//   - The payment window a browser sees (§3 steps 2–3): see Payment window below.
//   - A cancel made by the merchant's staff in Toss's merchant console, which our API never
//     sees: POST /sim/v1/console/payments/{paymentKey}/cancel with {"cancelAmount"? (number
//     or decimal string; absent cancels the balance), "cancelReason"}, or
//     Simulator.ConsoleCancel. It is the API cancel in every effect (status, balance, a
//     cancels[] entry with its own transactionKey and canceledAt, the transaction and
//     settlement rows, the webhook) and every refusal (NOT_FOUND_PAYMENT,
//     FORBIDDEN_CONSECUTIVE_REQUEST, ALREADY_CANCELED_PAYMENT, NOT_CANCELABLE_PAYMENT,
//     NOT_CANCELABLE_AMOUNT, INVALID_REQUEST, each with its API status and error body), and
//     answers 200 with the Payment object. Like the session route it takes no auth, no
//     Idempotency-Key (each call is one console action) and no faults. Toss's reconciliation
//     note (D-oopy, toss-api.md §7) names such changes as a cause of mismatches.
//   - A settlement fee that differs from the contract for one payment: SessionRequest's
//     SettlementFeeRate ("settlementFeeRate" in the session body, a decimal string such as
//     "0.035" or a number, 0 ≤ rate < 1), or Simulator.SetSettlementFeeRate on an existing
//     payment; see Settlements below.
//   - POST /v1/payments/confirm (§4.1), GET /v1/payments/{paymentKey} (§4.2),
//     GET /v1/payments/orders/{orderId} (§4.3), POST /v1/payments/{paymentKey}/cancel (§4.4,
//     full and partial) and GET /v1/transactions (§4.5), with the §5.4 status transitions
//     IN_PROGRESS → DONE | ABORTED | EXPIRED and DONE → PARTIAL_CANCELED → CANCELED.
//   - The 10-minute confirm window, applied lazily by every route that touches the payment,
//     and the 1-second rule between cancels (FORBIDDEN_CONSECUTIVE_REQUEST).
//   - GET /v1/settlements (§4.6, §7): one row per approval and one per cancel; see
//     Settlements below.
//   - GET /sim/v1/stats, which reports the counters of Stats and the executed confirms per
//     orderId for tests that run out of process.
//   - PAYMENT_STATUS_CHANGED webhooks (§10) with the §10.3 headers and the §10.4 retry
//     schedule, when Faults.WebhookURL is set; see Webhooks below.
//   - Faults of the PSP and the network (Config.Faults, or per request X-Sim-* headers):
//     latency, retryable errors and lost responses; see Faults below.
//
// # Not simulated
//
// READY (the 30-minute window before authentication), virtual accounts (WAITING_FOR_DEPOSIT,
// secret, refundReceiveAccount), transfers, phone and gift-certificate payments, billing,
// escrow, cash receipts, manual settlement (POST /v1/settlements), weekly and monthly settlement
// cycles, webhooks other than PAYMENT_STATUS_CHANGED
// (DEPOSIT_CALLBACK, CANCEL_STATUS_CHANGED, payout and seller events, signatures), the
// developer center's "다시 시도" button, Accept-Language (messages are Korean only), real rate
// limiting (429 comes only as an injected fault) and any per-request API version. The card object carries fixed test
// values, and card.acquireStatus stays READY after cancels. checkout.url and receipt URLs
// point at Toss's hosts, as in real payloads; the simulator does not serve them.
//
// # Choices where toss-api.md is UNCONFIRMED
//
//   - A confirm whose orderId or amount differs from the session is 400 INVALID_REQUEST and
//     leaves the payment IN_PROGRESS (§4.1, §13). It is checked after the payment's state, so
//     a DONE payment answers ALREADY_PROCESSED_PAYMENT whatever the body says.
//   - Confirm accepts the amount as a JSON number only; a string is 400 INVALID_REQUEST
//     (§4.1). The session route accepts both.
//   - A confirm of an ABORTED payment is 400 ALREADY_PROCESSED_PAYMENT (it was processed, and
//     failed), the same as for DONE and canceled payments.
//   - A confirm that arrives, under a different or no idempotency key, while another confirm
//     of the same payment is still running is 400 ALREADY_PROCESSED_PAYMENT.
//   - Error answers, 5xx included, are stored and replayed under their idempotency key like
//     successes (§2: "UNCONFIRMED whether transient 5xx answers are stored"). Auth failures,
//     Test-Code answers, injected errors (Faults.ErrorRate: "never reached processing"), 409
//     IDEMPOTENT_REQUEST_PROCESSING, INVALID_IDEMPOTENCY_KEY and the 500 of a change a
//     persisted simulator could not save are not stored.
//   - 429 carries the code TOO_MANY_REQUESTS and a message of the simulator's own; no Toss
//     code for it was found (§1, §13).
//   - A PAYMENT_STATUS_CHANGED webhook goes out on every cancel, also a further partial cancel
//     that leaves the status PARTIAL_CANCELED (§5.4 does not say).
//   - The EXPIRED webhook goes out when the simulator expires the payment, which is lazily:
//     when a route, CreateSessionWith or Payment next touches it after its window.
//   - An unknown TossPayments-Test-Code is answered with status 400 and the code as given.
//   - After a cancel, suppliedAmount and vat are recomputed from the balance
//     (vat = round(balance/11), supplied = balance − vat), so a full cancel ends at 0/0 as in
//     payment-canceled-full.json and supplied + vat = balance as in the PayPal sample.
//   - A cancel appends a Transaction row with status CANCELED (balance now 0) or
//     PARTIAL_CANCELED and amount = the cancelled amount, positive (§6, §13).
//   - FORBIDDEN_CONSECUTIVE_REQUEST is checked before the payment's status and measured from
//     the previous successful cancel of the same paymentKey, made by the API or the console.
//   - A console cancel shows in cancels[], the transaction rows and the webhook exactly as an
//     API cancel does; nothing in the payloads tells where it was made (toss-api.md does not
//     say whether Toss marks it).
//   - GET /v1/transactions: limit above 5000 is 400 INVALID_REQUEST (§11.5); startDate after
//     endDate gives an empty array; rows are ordered by transactionAt, then transactionKey.
//   - The NOT_FOUND_PAYMENT message is the tables' "존재하지 않는 결제 정보 입니다." (the docs'
//     error-object example omits "정보").
//   - IN_PROGRESS payments show lastTransactionKey, secret and receipt as null; the
//     payment-in-progress.json sample shows a key and a secret before approval.
//
// Choices about the simulator's own test hooks (no Toss counterpart):
//
//   - A session for an orderId whose payment is DONE or canceled is 409 DUPLICATED_ORDER_ID
//     (the browser SDK's code for that case). A session for an orderId that is IN_PROGRESS,
//     ABORTED or EXPIRED replaces the payment: the old paymentKey is forgotten (confirm 404
//     NOT_FOUND_PAYMENT_SESSION, lookup 404 NOT_FOUND_PAYMENT), so an order never has two
//     payments that could both be approved.
//   - confirmError fires on the next executed confirm only, unless confirmErrorTimes says
//     otherwise; idempotent replays do not consume it.
//   - Stats.ConfirmsProcessed and ConfirmsFor count every executed confirm, including ones
//     refused for a bad body or a bad state; ConfirmsFor keys on the orderId in the body.
//   - Console cancels count in Stats.ConsoleCancels only, never in CancelRequests or
//     CancelsProcessed: those say what the system under test asked of the API.
//
// # Payment window
//
// GET /sim/v1/window?orderId&amount&orderName&successUrl&failUrl is an HTML page standing for
// Toss's payment window (relative to where the handler is mounted: /tosssim/sim/v1/window in
// paymentd). It names the merchant (Config.MerchantName, since the simulator has no client
// keys), the order name and the amount in won ("25,000원"), and offers three buttons, which
// post the order back to POST /sim/v1/window; that answers 303 See Other:
//
//   - Approve opens the session exactly as POST /sim/v1/sessions does and sends the browser to
//     successUrl?…&paymentType=NORMAL&orderId=…&paymentKey=…&amount=… (the merchant's own
//     query kept, ours appended). A session the simulator refuses (an order already DONE:
//     DUPLICATED_ORDER_ID) goes to failUrl?code&message&orderId instead.
//   - Decline is the card company refusing: failUrl?code=REJECT_CARD_COMPANY&message=…&orderId=….
//   - Close is the buyer giving up: failUrl?code=PAY_PROCESS_CANCELED&message=…, without the
//     orderId, as Toss does (§3, §8.5). No payment is made and nothing changes, as when a
//     buyer closes Toss's window (§3).
//
// Every parameter is required exactly once and checked on both routes (the form is the
// browser's to change): orderId as for sessions, amount a positive whole number of won in at
// most 15 digits with no sign, zero or exponent, orderName 1–100 characters with no control
// characters, successUrl and failUrl absolute http or https URLs with a host, no user
// information, no spaces and at most 2048 bytes (so no javascript: or data: redirect, no
// scheme-relative one). Anything else is a 400 page listing the problems. The pages have no
// script, a Content-Security-Policy allowing only their inline style, and form-action
// limited to http(s), since the redirect after the post goes to the merchant. The failUrl
// message of PAY_PROCESS_CANCELED is the simulator's own wording; toss-api.md quotes none.
//
// Not simulated: the READY state while the window is open, methods other than a card, the
// card form itself, the 30-minute window timeout, and Toss's client keys (anyone may open a
// window for any order, as anyone may call POST /sim/v1/sessions).
//
// # Faults
//
// Config.Faults sets them for every request; the headers below override them for one /v1
// request (an unparsable value is 400 INVALID_REQUEST and nothing runs). /sim routes never
// see faults. On a /v1 request they apply in this order:
//
//  1. X-Sim-Latency ("20ms", or a range "5ms-200ms"; "0" turns it off), Faults.Latency: the
//     request waits a uniform random duration in [min, max] after its body is read and
//     before auth. If the client goes away meanwhile, nothing runs and nothing is answered.
//  2. X-Sim-Error-Rate (0..1), Faults.ErrorRate: after auth, with that probability the answer
//     is one of 500 FAILED_INTERNAL_SYSTEM_PROCESSING, 400 PROVIDER_ERROR and 429
//     TOO_MANY_REQUESTS, chosen uniformly. Nothing runs, the idempotency key is not stored,
//     so a retry under the same key executes. Counted in Stats.InjectedErrors (and in
//     ConfirmRequests/CancelRequests, which count every authenticated request).
//  3. X-Sim-Lost-Response-Rate (0..1), Faults.LostResponseRate: a confirm or cancel that
//     executes (not a replay, 409, Test-Code or injected answer) is, with that probability,
//     done and stored under its idempotency key, and then its connection breaks after the
//     status line: the client gets a transport error ("unexpected EOF") while a lookup or a
//     same-key retry shows what happened. Counted in Stats.LostResponses.
//
// Every random decision comes from one source seeded by Faults.Seed, so a serial run meets
// the same faults for the same seed.
//
// # Webhooks
//
// With Faults.WebhookURL set, New starts a background sender (Close stops it). Each change of
// a payment to DONE, ABORTED, EXPIRED, PARTIAL_CANCELED or CANCELED queues one webhook:
//
//	POST <WebhookURL>
//	Content-Type: application/json
//	tosspayments-webhook-transmission-id: whtrans_<24 random alphanumerics>
//	tosspayments-webhook-transmission-time: <Config.Now at the attempt, 2006-01-02T15:04:05+09:00>
//	tosspayments-webhook-transmission-retried-count: <0 on the first attempt, then 1…7>
//
//	{"eventType":"PAYMENT_STATUS_CHANGED","createdAt":"2026-01-02T14:46:59.653270","data":{…}}
//
// createdAt is Config.Now at the change in KST with microseconds and no offset; data is the
// Payment object exactly as a lookup returned it at that moment, so a late delivery shows a
// stale state and a receiver must read the payment back for the truth.
//
// Only a 200 within Faults.WebhookTimeout (default 10 s) is a success. After a failure the
// same webhook (same transmission id) is retried after 1, 4, 16, 64, 256, 1024 and 4096
// minutes, each multiplied by Faults.TimeScale; after the 7th failed retry it is given up
// (Stats.WebhookFailures). Faults.WebhookDuplicateRate adds, 1–50 ms after a first attempt,
// an extra one-shot copy with the same id and retried-count 0. Without Faults.WebhookReorder
// a payment's webhooks make their first attempts in the order of the changes, each after the
// previous one's first attempt has finished (different payments go in parallel); with it,
// each first attempt is held a random 0–100 ms, so a CANCELED can arrive before its DONE.
//
// # Settlements
//
// GET /v1/settlements?startDate&endDate[&dateType][&page][&size] answers a bare array of §7
// rows, one per transaction of GET /v1/transactions that is an approval (DONE) or a cancel
// (CANCELED, PARTIAL_CANCELED), ordered by transaction time, then transactionKey. A row is
// visible as soon as its transaction exists (Toss shows them after card acquisition).
//
//   - Fee (Config.Settlement): supply = round(|amount| × FeeRate), vat = round(supply ×
//     VATRate), both half away from zero to whole won; fee = supply + vat; payOutAmount =
//     amount − fee; fees = [{"type":"BASE","fee":fee}] and "fee" is sent too (both shapes of
//     §7); interestFee is 0. Defaults: FeeRate 0.03, VATRate 0.1, PayoutDays 2.
//   - A payment with its own fee rate (SessionRequest.SettlementFeeRate, SetSettlementFeeRate)
//     has every row, approval and cancels, computed with that rate in place of FeeRate (VAT
//     as above; a rate of 0 gives a zero fee). Rows are derived when listed, so a rate set
//     later changes the payment's rows already seen too; the latest rate set wins.
//   - An approval row has amount = totalAmount and cancel null. A cancel row has amount =
//     −cancelAmount and the fee of the cancelled amount negated (the PSP refunds its fee on
//     what it refunds), so supplyAmount, vat, fee and payOutAmount are negative, as in
//     settlements-list-cancel.json; cancel is that cancel's entry of cancels[]. Because each
//     row rounds on its own, a payment's rows may not sum to the fee of its net amount.
//   - soldDate is the KST day of the transaction (daily settlement); paidOutDate is soldDate +
//     PayoutDays calendar days (no business-day calendar). approvedAt is the payment's.
//   - startDate and endDate are required yyyy-MM-dd dates (a date-time is 400
//     INVALID_REQUEST); startDate after endDate gives []. dateType is soldDate (default) or
//     paidOutDate; page ≥ 1 (default 1; past the end gives []); size 1–5000 (default 100).
//     Anything else is 400 INVALID_REQUEST.
//   - card, easyPay and the other method objects are null.
//
// # Persistence
//
// Open(ctx, cfg, pool) returns a simulator whose truth is saved in the tosssim schema of
// pool's database and reloaded from it when it opens; New keeps everything in memory, as
// before. Reads are always answered from memory: the database is read once, by Open.
//
// Saved, and the same after a restart: every payment with all its fields (status, amounts,
// balance, cancels with their transaction keys and times, failure, method, approvedAt,
// approval number, the injected confirm error of its session and how many answers of it are
// left, the time of its last successful cancel, API or console, so the 1-second rule holds
// across a restart, its own settlement fee rate);
// payments a newer session replaced, so their keys are never issued again; every transaction
// row, from which GET /v1/settlements derives its rows; the executed confirms per orderId
// (ConfirmsFor); the stored idempotent answers, replayed byte for byte within their TTL
// (answers past it are deleted by Open).
//
// Not saved: the Stats counters, which start at zero in each simulator; the webhook sender's
// queue (undelivered webhooks and pending retries are lost; a payment's later changes send
// theirs as usual); in-flight idempotency claims and confirms (a request cut short by a crash
// never answered, so its key is free and its payment as it was).
//
// Write-through. Every operation builds its change on copies of what it alters, saves it in
// one transaction, and only then applies it to memory and answers: a crash right after an
// answer cannot forget what it said, and a change the database refused leaves no trace in
// memory (the Stats counters aside) and sends no webhook. Copy, save, swap was chosen over save-then-mutate because the operations decide and
// change in one pass (expiry, counters, approval, transaction row); building the change first
// keeps that code unchanged in shape and gives one place, commit, where memory changes. The
// idempotent answer is saved in the same transaction as the change that produced it. A read
// can change state too (an expiry becomes due), and that is saved before the read answers.
// Changes are saved with the simulator's mutex held, so the database sees them in the order
// memory does; each save waits for PostgreSQL (at most 10 s). An answer that changed nothing
// (a refusal under an Idempotency-Key) is saved without the mutex.
//
// Store failures. A change that cannot be saved is answered 500 FAILED_INTERNAL_SYSTEM_PROCESSING,
// as Toss answers an internal failure; the answer is not kept under the Idempotency-Key, so a
// retry executes; the cause goes to Config.Logger. CreateSession returns that *Error wrapping
// the cause. A confirm's count is saved on its own when it passes its checks, so a confirm that
// then fails to save its outcome still counts in ConfirmsFor, in memory and in the database
// alike. If the simulator's connection is lost, it cannot know whether the last save committed,
// and it has lost its owner lock: it then refuses every change (500, also a read that finds an
// expiry due) while other reads go on, until it is closed and opened again, which reloads the
// truth.
//
// One simulator per database. Open takes a PostgreSQL session advisory lock on a connection of
// its own, held until Close, and every save goes through that connection, so a simulator that
// lost the lock cannot write. A second Open on the same database, from any process, fails at
// once with an error wrapping ErrSchemaOwned ("another simulator owns this database's tosssim
// schema"). Close releases the lock; later changes of the closed simulator answer 500.
//
// Schema. Open creates the schema tosssim if needed and applies the SQL files embedded from
// sql/ with goose, whose version table is tosssim.goose_db_version; nothing outside the schema
// is touched, the project's own public.goose_db_version included. goose because the project
// already migrates with it: numbered files, never edited once landed, a version table, and no
// migration code to maintain here. Only the lock holder migrates, so goose takes no lock of its
// own. The clock of a persisted simulator is read to the microsecond, PostgreSQL's resolution,
// so the times it reloads are exactly those it decided on. Amounts are numeric columns, sent
// and read as text, so the pool needs no decimal codec.
//
// A Simulator is safe for concurrent use. One mutex guards the truth; it is never held while
// writing to the network (it is while saving to the database), and a confirm marks its
// payment as in flight between its checks and its outcome, so a concurrent duplicate sees the
// in-flight state.
package tosssim
