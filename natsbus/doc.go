// Package natsbus owns the integration bus: NATS JetStream as the rest of the world sees this
// ledger. It holds the embedded nats-server paymentd runs when NATS_URL is empty, the PAYMENTS
// stream and its subjects, the JSON envelope every message carries (the integration contract,
// docs/events.md), and the Relay that publishes the event store to the stream.
//
// # Delivery
//
// The events table is the outbox: nothing is published from a command's code path. The Relay
// reads committed events in global-log order, like a projection, and publishes each to
// payments.v1.<merchantId>.<orderId>.<EventType> with Nats-Msg-Id set to the event's id. Its
// checkpoint (relay_checkpoints) moves only after JetStream acknowledged every message before
// it, so a crash between publish and checkpoint publishes the tail again on restart, and
// JetStream's duplicate window (Config.DuplicateWindow) drops the repeats: within that window
// every event is in the stream exactly once. A relay that stays down longer than the window
// after such a crash can store an event twice, with the same id; consumers that must never
// count one twice deduplicate on the envelope's id, as the merchant webhooks' receivers are
// told to.
//
// One relay runs across all instances: each paymentd tries a PostgreSQL advisory lock
// (db.LockRelay) and the holder publishes; the others wait and take over within
// Config.LockRetry of the holder's session ending.
//
// Only payment streams are integration events. A merchant's own stream (registration, Toss
// credentials, API keys) is configuration and secrets' metadata; it never leaves the database.
package natsbus
