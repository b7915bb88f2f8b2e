package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/natsbus"
)

// Streams and subjects of dead letters and redrives.
const (
	// StreamDeadLetters captures the MAX_DELIVERIES advisories of PAYMENTS's consumers.
	StreamDeadLetters = "NOTIFY_DLQ"
	// StreamRedrive holds redriven messages until the merchant's 2xx (a work queue).
	StreamRedrive = "NOTIFY_REDRIVE"
	// AdvisoryPrefix is followed by the consumer's name.
	AdvisoryPrefix = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES." + natsbus.StreamPayments + "."
	// RedriveRoot prefixes the redrive subjects: notify.redrive.<merchantId>.<dead letter id>.
	RedriveRoot = "notify.redrive"
	// ConsumerPrefix names a merchant's delivery consumer on PAYMENTS: notify-<merchantId>.
	ConsumerPrefix = "notify-"
	// RedriveConsumerPrefix names a merchant's consumer on NOTIFY_REDRIVE.
	RedriveConsumerPrefix = "redrive-"
	// headerDeadLetter carries a redriven message's dead letter id.
	headerDeadLetter = "Ledger-Dead-Letter"
	// redriveDuplicates is how long NOTIFY_REDRIVE drops a repeated redrive of a dead letter
	// by its Nats-Msg-Id, beside the check of its pending subject.
	redriveDuplicates = 24 * time.Hour
)

// Errors of the dead-letter functions.
var (
	ErrDeadLetterNotFound = &domain.Error{Kind: domain.KindNotFound, Code: "DEAD_LETTER_NOT_FOUND", Message: "dead letter not found"}
	ErrAlreadyRedriven    = &domain.Error{Kind: domain.KindConflict, Code: "DEAD_LETTER_REDRIVEN", Message: "the dead letter is redriven already"}
	ErrOriginalGone       = &domain.Error{Kind: domain.KindConflict, Code: "DEAD_LETTER_ORIGINAL_GONE", Message: "the dead letter's message is no longer in PAYMENTS"}
)

// ConsumerName is the delivery consumer of merchant m on PAYMENTS.
func ConsumerName(m domain.MerchantID) string { return ConsumerPrefix + string(m) }

// RedriveSubject is where dead letter id of merchant m is redriven.
func RedriveSubject(m domain.MerchantID, id uint64) string {
	return RedriveRoot + "." + string(m) + "." + strconv.FormatUint(id, 10)
}

// EnsureStreams creates or updates NOTIFY_DLQ and NOTIFY_REDRIVE. The Dispatcher calls it when
// it starts; paymentctl may call it too.
func EnsureStreams(ctx context.Context, js jetstream.JetStream, cfg Config) error {
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        StreamDeadLetters,
		Description: "merchant notifications that ran out of deliveries (MAX_DELIVERIES advisories of PAYMENTS's notify-* consumers)",
		Subjects:    []string{AdvisoryPrefix + "*"},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Replicas:    max(cfg.Replicas, 1),
		MaxAge:      cfg.DeadLetterMaxAge,
	}); err != nil {
		return fmt.Errorf("notify: stream %s: %w", StreamDeadLetters, err)
	}
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        StreamRedrive,
		Description: "dead letters redriven to their merchant, until delivered",
		Subjects:    []string{RedriveRoot + ".>"},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.WorkQueuePolicy,
		Replicas:    max(cfg.Replicas, 1),
		Duplicates:  redriveDuplicates,
	}); err != nil {
		return fmt.Errorf("notify: stream %s: %w", StreamRedrive, err)
	}
	return nil
}

// DeadLetterEntry is a notification that ran out of deliveries.
type DeadLetterEntry struct {
	ID         uint64            `json:"id"` // its NOTIFY_DLQ sequence
	MerchantID domain.MerchantID `json:"merchantId"`
	Consumer   string            `json:"consumer"`
	StreamSeq  uint64            `json:"streamSeq"` // the message's PAYMENTS sequence
	Deliveries uint64            `json:"deliveries"`
	At         time.Time         `json:"at"` // when it ran out
	// Filled by DeadLetter: the original message, and whether a redrive of it is pending.
	Subject        string          `json:"subject,omitempty"`
	EventID        string          `json:"eventId,omitempty"`
	EventType      string          `json:"eventType,omitempty"`
	Body           json.RawMessage `json:"body,omitempty"`
	RedrivePending bool            `json:"redrivePending,omitempty"`
}

// advisory is the JSON of a MAX_DELIVERIES advisory (io.nats.jetstream.advisory.v1.max_deliver).
type advisory struct {
	Stream     string    `json:"stream"`
	Consumer   string    `json:"consumer"`
	StreamSeq  uint64    `json:"stream_seq"`
	Deliveries uint64    `json:"deliveries"`
	Timestamp  time.Time `json:"timestamp"`
}

// parse reads a NOTIFY_DLQ message; ok is false for an advisory of another consumer.
func parse(m *jetstream.RawStreamMsg) (DeadLetterEntry, bool) {
	var a advisory
	if err := json.Unmarshal(m.Data, &a); err != nil || !strings.HasPrefix(a.Consumer, ConsumerPrefix) {
		return DeadLetterEntry{}, false
	}
	merchant, err := domain.ParseMerchantID(strings.TrimPrefix(a.Consumer, ConsumerPrefix))
	if err != nil {
		return DeadLetterEntry{}, false
	}
	return DeadLetterEntry{ID: m.Sequence, MerchantID: merchant, Consumer: a.Consumer, StreamSeq: a.StreamSeq,
		Deliveries: a.Deliveries, At: a.Timestamp.In(domain.KST)}, true
}

// ListDeadLetters lists the dead letters, oldest first: every merchant's when merchant is "",
// else that merchant's.
func ListDeadLetters(ctx context.Context, js jetstream.JetStream, merchant domain.MerchantID) ([]DeadLetterEntry, error) {
	s, err := js.Stream(ctx, StreamDeadLetters)
	if err != nil {
		return nil, fmt.Errorf("notify: dead letters: %w", err)
	}
	filter := AdvisoryPrefix + "*"
	if merchant != "" {
		filter = AdvisoryPrefix + ConsumerName(merchant)
	}
	out := []DeadLetterEntry{}
	for seq := uint64(1); ; {
		m, err := s.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(filter))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("notify: dead letters: %w", err)
		}
		if d, ok := parse(m); ok {
			out = append(out, d)
		}
		seq = m.Sequence + 1
	}
}

// DeadLetter returns dead letter id with its original message from PAYMENTS (Body is empty when
// PAYMENTS no longer holds it). An unknown id, or one redriven and delivered, is
// ErrDeadLetterNotFound.
func DeadLetter(ctx context.Context, js jetstream.JetStream, id uint64) (DeadLetterEntry, error) {
	s, err := js.Stream(ctx, StreamDeadLetters)
	if err != nil {
		return DeadLetterEntry{}, fmt.Errorf("notify: dead letter %d: %w", id, err)
	}
	m, err := s.GetMsg(ctx, id)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return DeadLetterEntry{}, domain.Errorf(ErrDeadLetterNotFound, "no dead letter %d (unknown, or redriven and delivered)", id)
	}
	if err != nil {
		return DeadLetterEntry{}, fmt.Errorf("notify: dead letter %d: %w", id, err)
	}
	d, ok := parse(m)
	if !ok {
		return DeadLetterEntry{}, domain.Errorf(ErrDeadLetterNotFound, "no dead letter %d of a merchant notification", id)
	}
	payments, err := js.Stream(ctx, natsbus.StreamPayments)
	if err != nil {
		return DeadLetterEntry{}, fmt.Errorf("notify: dead letter %d: %w", id, err)
	}
	orig, err := payments.GetMsg(ctx, d.StreamSeq)
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
	case err != nil:
		return DeadLetterEntry{}, fmt.Errorf("notify: dead letter %d: %w", id, err)
	default:
		d.Subject, d.Body = orig.Subject, json.RawMessage(orig.Data)
		d.EventID = orig.Header.Get(jetstream.MsgIDHeader)
		if e, err := natsbus.Decode(orig.Data); err == nil {
			d.EventType = string(e.Type)
		}
	}
	redrive, err := js.Stream(ctx, StreamRedrive)
	if err != nil {
		return DeadLetterEntry{}, fmt.Errorf("notify: dead letter %d: %w", id, err)
	}
	_, err = redrive.GetLastMsgForSubject(ctx, RedriveSubject(d.MerchantID, id))
	switch {
	case err == nil:
		d.RedrivePending = true
	case !errors.Is(err, jetstream.ErrMsgNotFound):
		return DeadLetterEntry{}, fmt.Errorf("notify: dead letter %d: %w", id, err)
	}
	return d, nil
}

// Redrive delivers dead letter id to its merchant once more: the Dispatcher POSTs it and, on
// the merchant's 2xx, removes the dead letter. A dead letter whose redrive is pending is
// ErrAlreadyRedriven; one redriven and delivered, or unknown, is ErrDeadLetterNotFound.
func Redrive(ctx context.Context, js jetstream.JetStream, id uint64) error {
	d, err := DeadLetter(ctx, js, id)
	if err != nil {
		return err
	}
	if d.RedrivePending {
		return domain.Errorf(ErrAlreadyRedriven, "dead letter %d is redriven already; it is delivered when %s answers 2xx", id, d.MerchantID)
	}
	if d.Body == nil {
		return domain.Errorf(ErrOriginalGone, "dead letter %d: PAYMENTS no longer holds message %d (its MaxAge passed)", id, d.StreamSeq)
	}
	msg := nats.NewMsg(RedriveSubject(d.MerchantID, id))
	msg.Data = d.Body
	msg.Header.Set(jetstream.MsgIDHeader, "redrive-"+strconv.FormatUint(id, 10))
	msg.Header.Set(headerDeadLetter, strconv.FormatUint(id, 10))
	ack, err := js.PublishMsg(ctx, msg)
	if err != nil {
		return fmt.Errorf("notify: redrive %d: %w", id, err)
	}
	if ack.Duplicate {
		return domain.Errorf(ErrAlreadyRedriven, "dead letter %d was redriven already", id)
	}
	return nil
}

// deleteDeadLetter removes dead letter id once its redrive was delivered.
func deleteDeadLetter(ctx context.Context, js jetstream.JetStream, id uint64) error {
	s, err := js.Stream(ctx, StreamDeadLetters)
	if err != nil {
		return err
	}
	if err := s.DeleteMsg(ctx, id); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		return err
	}
	return nil
}
