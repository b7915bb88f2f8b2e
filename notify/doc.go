// Package notify owns merchant notifications: the delivery of every event of a merchant's
// payments to the URL the merchant registered (merchants.Service.SetNotificationURL), signed,
// in order, with retries, and the dead letters of deliveries that ran out of attempts.
//
// # Design
//
// The PAYMENTS stream (package natsbus) already holds every payment event in order, so delivery
// is a JetStream consumer per merchant rather than a table of our own: a durable pull consumer
// notify-<merchantId> on PAYMENTS, filtered to payments.v1.<merchantId>.>, with explicit acks
// and MaxAckPending 1. MaxAckPending 1 is what keeps a merchant's deliveries in order: the
// server hands out the next message only once the previous one is acked or dropped, whichever
// paymentd instance pulls it, so several instances share the consumer safely. The consumer
// starts at the time the endpoint was set (DeliverByStartTime), so a new endpoint does not
// receive the whole history.
//
// Each message is POSTed as published, byte for byte, with its signature (Sign). A 2xx acks
// it; anything else, a 3xx included (redirects are not followed: a signed delivery goes only
// where the merchant said), is Nak'ed with the delay the retry schedule (Config.BackOff) gives
// its attempt. Retries are explicit Naks rather than the consumer's own BackOff because the
// server's BackOff replaces AckWait with its first step: a slow POST that is still running
// would be redelivered, possibly to another instance, and the merchant would get two
// deliveries at once, out of order. AckWait is instead the HTTP timeout plus a margin, so only
// an instance that died mid-delivery leaves a message to be redelivered after it.
//
// Endpoint changes are noticed by polling the merchants' configuration every
// Config.PollInterval (merchants.Service.NotificationTargets, which re-reads each candidate's
// stream at most every CacheTTL): it needs no channel of its own, survives restarts, and costs
// one small query per interval. A removed endpoint's consumers are deleted; an endpoint set
// again later starts afresh from its own time.
//
// # Dead letters and redrive
//
// After Config.MaxDeliver attempts the last Nak makes JetStream drop the message from the
// consumer (which moves on to the next event) and publish the advisory
// $JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.PAYMENTS.<consumer>. That is a core NATS message,
// lost if nobody listens, so the stream NOTIFY_DLQ captures those subjects: a dead letter is
// recorded by the server itself, whether or not any paymentd reads it then. A dead letter's id
// is its NOTIFY_DLQ sequence; it names the consumer (and so the merchant), the PAYMENTS
// sequence of the message and the delivery count, and DeadLetter fetches the original message
// from PAYMENTS by that sequence.
//
// Redrive publishes the original message to the work-queue stream NOTIFY_REDRIVE under
// notify.redrive.<merchantId>.<dead letter id>, with Nats-Msg-Id redrive-<id>: a repeated
// redrive is refused while the first is pending (the subject is there) and dropped by the
// duplicate window if two race. The Dispatcher consumes NOTIFY_REDRIVE per merchant
// (redrive-<merchantId>, MaxAckPending 1, no delivery limit: an operator asked for it, and the
// dead letter stays listed until it is delivered), and once the merchant answers 2xx it deletes
// the dead letter, then acks. A crash between the two delivers it once more; receivers
// deduplicate on Ledger-Event-Id as they must anyway (see the natsbus package doc).
package notify
