package webhooks

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// MaxBodyBytes bounds a webhook body; a larger one is answered 413 and not stored.
const MaxBodyBytes = 1 << 20

// DefaultStoreTimeout is InboxConfig.StoreTimeout's default.
const DefaultStoreTimeout = 3 * time.Second

// TransmissionIDHeader is Toss's per-delivery id, kept when a delivery is resent (§10.3).
const TransmissionIDHeader = "tosspayments-webhook-transmission-id"

// maxTransmissionIDLen bounds a transmission id used as the dedupe key as it is; a longer one
// (not Toss's whtrans_… form) is hashed so it fits the unique index.
const maxTransmissionIDLen = 200

// droppedHeaders are not stored: credentials a proxy or a caller may add.
var droppedHeaders = map[string]bool{"authorization": true, "proxy-authorization": true, "cookie": true}

// InboxConfig configures an Inbox.
type InboxConfig struct {
	// StoreTimeout bounds the insert of one delivery, waiting for a pooled connection included.
	// Past it the delivery is spooled and answered 200. Default 3 s, well inside Toss's 10 s.
	StoreTimeout time.Duration
	// SpoolDir is where deliveries the database could not take are kept until the worker drains
	// them; give the worker the same directory. It must belong to this process. Empty disables
	// the spool: such a delivery is then answered 503 and Toss resends it.
	SpoolDir string
	// Notify, when set, is called after a delivery that needs the worker was stored; wire it to
	// (*Worker).Wake so the worker starts at once instead of at its next poll. It must not block.
	Notify func()
}

// Inbox is the POST /webhooks/toss handler. It is safe for concurrent use.
type Inbox struct {
	pool   *pgxpool.Pool
	cfg    InboxConfig
	logger *slog.Logger
}

var _ http.Handler = (*Inbox)(nil)

// NewInbox returns an inbox that stores deliveries in pool's webhook_inbox table.
func NewInbox(pool *pgxpool.Pool, cfg InboxConfig, logger *slog.Logger) *Inbox {
	if cfg.StoreTimeout <= 0 {
		cfg.StoreTimeout = DefaultStoreTimeout
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Inbox{pool: pool, cfg: cfg, logger: logger.With("component", "webhook-inbox")}
}

// ServeHTTP stores one delivery and answers it; see the package documentation for the answers.
// It does not depend on the request path, so it can be mounted under any prefix.
func (in *Inbox) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", r.Method+" is not allowed; Toss delivers webhooks with POST")
		return
	}
	received := time.Now()
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		writeError(w, http.StatusRequestEntityTooLarge, "BODY_TOO_LARGE", fmt.Sprintf("a webhook body must be at most %d bytes", MaxBodyBytes))
		return
	}
	if err != nil {
		// The sender is gone or broke the framing: there is no delivery to keep.
		writeError(w, http.StatusBadRequest, "INVALID_WEBHOOK", "reading the body: "+err.Error())
		return
	}
	line := spoolLine{ReceivedAt: received, Headers: captureHeaders(r.Header), Body: body}
	d := classify(body)
	log := in.logger.With("transmissionId", firstHeader(line.Headers, TransmissionIDHeader),
		"eventType", d.EventType, "orderId", d.OrderID, "status", d.Status)

	// Detached from the request: a sender that hangs up must not cancel a half-done insert.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), in.cfg.StoreTimeout)
	inserted, err := insertDelivery(ctx, in.pool, line, d)
	cancel()
	answer := "stored"
	switch {
	case err != nil:
		if serr := in.spool(line); serr != nil {
			log.ErrorContext(r.Context(), "webhook neither stored nor spooled", "storeError", err, "spoolError", serr)
			if d.Status == StatusRejected {
				break // malformed anyway: answered 400 below
			}
			writeError(w, http.StatusServiceUnavailable, "UNAVAILABLE", "the webhook could not be stored; send it again")
			return
		}
		log.WarnContext(r.Context(), "webhook spooled: the database did not take it in time", "error", err, "storeTimeout", in.cfg.StoreTimeout.String())
		answer = "spooled"
	case !inserted:
		log.InfoContext(r.Context(), "duplicate webhook")
		answer = "duplicate"
	default:
		log.InfoContext(r.Context(), "webhook stored", "reason", d.Reason)
		if d.Status == StatusPending && in.cfg.Notify != nil {
			in.cfg.Notify()
		}
	}
	if d.Status == StatusRejected {
		writeError(w, http.StatusBadRequest, "INVALID_WEBHOOK", d.Reason)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": answer})
}

func (in *Inbox) spool(line spoolLine) error {
	if in.cfg.SpoolDir == "" {
		return errors.New("no spool directory configured")
	}
	return appendSpool(in.cfg.SpoolDir, line)
}

// insertDelivery stores line as classified by d; inserted is false when its dedupe key is
// already stored.
func insertDelivery(ctx context.Context, pool *pgxpool.Pool, line spoolLine, d delivery) (inserted bool, err error) {
	tid := firstHeader(line.Headers, TransmissionIDHeader)
	var rejectReason, outcome string
	var processedAt *time.Time
	switch d.Status {
	case StatusRejected:
		rejectReason = d.Reason
	case StatusProcessed:
		outcome, processedAt = d.Reason, &line.ReceivedAt
	}
	headers := line.Headers
	if headers == nil {
		headers = map[string][]string{}
	}
	tag, err := pool.Exec(ctx, `
		INSERT INTO webhook_inbox (dedupe_key, transmission_id, event_type, order_id, headers, body,
		                           received_at, status, reject_reason, outcome, processed_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
		ON CONFLICT (dedupe_key) DO NOTHING`,
		dedupeKey(tid, line.Body), nullIfEmpty(tid), nullIfEmpty(d.EventType), nullIfEmpty(d.OrderID),
		headers, line.Body, line.ReceivedAt, d.Status, nullIfEmpty(rejectReason), nullIfEmpty(outcome), processedAt)
	if err != nil {
		return false, fmt.Errorf("webhooks: store delivery: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// dedupeKey is the transmission id, or the body's SHA-256 when there is none.
func dedupeKey(transmissionID string, body []byte) string {
	switch {
	case transmissionID == "":
		sum := sha256.Sum256(body)
		return "sha256:" + hex.EncodeToString(sum[:])
	case len(transmissionID) > maxTransmissionIDLen:
		sum := sha256.Sum256([]byte(transmissionID))
		return "transmission-id-sha256:" + hex.EncodeToString(sum[:])
	}
	return transmissionID
}

// captureHeaders copies h with lower-case names, leaving out credentials. NUL, which jsonb
// cannot hold, becomes U+FFFD.
func captureHeaders(h http.Header) map[string][]string {
	out := make(map[string][]string, len(h))
	for name, values := range h {
		name = strings.ToLower(name)
		if droppedHeaders[name] {
			continue
		}
		vs := make([]string, len(values))
		for i, v := range values {
			vs[i] = strings.ToValidUTF8(strings.ReplaceAll(v, "\x00", "\uFFFD"), "\uFFFD")
		}
		out[strings.ToValidUTF8(strings.ReplaceAll(name, "\x00", "\uFFFD"), "\uFFFD")] = vs
	}
	return out
}

func firstHeader(h map[string][]string, name string) string {
	if vs := h[name]; len(vs) > 0 {
		return strings.TrimSpace(vs[0])
	}
	return ""
}

func nullIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// writeError answers {"error":{"code","message"}}, the API's error shape.
func writeError(w http.ResponseWriter, status int, code, message string) {
	writeJSON(w, status, map[string]any{"error": map[string]string{"code": code, "message": message}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v) // the sender hung up: nothing to do
}
