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
	"net/netip"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/internal/ratelimit"
)

// Defaults of InboxConfig.
const (
	// DefaultMaxBodyBytes fits Toss's payloads with room to spare: the largest sample
	// (webhook-payment-status-changed-done.json, a full Payment) is about 1.2 KiB, and a
	// Payment with many cancels[] entries stays well below 64 KiB.
	DefaultMaxBodyBytes = 64 << 10
	DefaultStoreTimeout = 3 * time.Second
	DefaultRate         = 20
	DefaultBurst        = 100
)

// KeptPrefixBytes is how much of the body a row that needs no read-back keeps (rejected rows,
// and rows processed on arrival such as an ignored event type). Its body_length and body_sha256
// still describe the whole body. Every such Toss payload is far smaller, so nothing Toss sends
// is cut; junk is.
const KeptPrefixBytes = 4 << 10

// maxHeaderBytes bounds the request headers a delivery may carry (names and values). Toss sends
// a handful of short ones (§10.3); a proxy adds a few more. A request over it is answered 431
// and not stored, so the headers column cannot be used to store bulk data either.
const maxHeaderBytes = 16 << 10

// TransmissionIDHeader is Toss's per-delivery id, kept when a delivery is resent (§10.3).
const TransmissionIDHeader = "tosspayments-webhook-transmission-id"

// maxTransmissionIDLen bounds a transmission id used as the dedupe key as it is; a longer one
// (not Toss's whtrans_… form) is hashed so it fits the unique index.
const maxTransmissionIDLen = 200

// droppedHeaders are not stored: credentials a proxy or a caller may add.
var droppedHeaders = map[string]bool{"authorization": true, "proxy-authorization": true, "cookie": true}

// InboxConfig configures an Inbox. Zero values take the defaults named on each field.
type InboxConfig struct {
	// MerchantExists reports whether a merchant is registered; it is required and must be safe
	// for concurrent use. The inbox calls it with an id that passed domain.ParseMerchantID,
	// within StoreTimeout, for every delivery that passed the address, rate and size checks.
	// false is answered 404 and nothing is stored. An error
	// (the registry is unreachable) does not refuse the delivery: it is stored or spooled under
	// the unverified id, which is harmless because the worker reads an order back only for the
	// merchant that owns it, and no payment belongs to a merchant that does not exist.
	MerchantExists func(ctx context.Context, id domain.MerchantID) (bool, error)
	// MaxBodyBytes bounds a body (default DefaultMaxBodyBytes); a larger one is answered 413 and
	// not stored.
	MaxBodyBytes int64
	// AllowedIPs, when not empty, are the only client addresses whose deliveries are taken; any
	// other is answered 403 and not stored. The client address is the TCP peer (RemoteAddr),
	// never X-Forwarded-For, which anyone can write: behind a proxy, restrict at the proxy.
	AllowedIPs []netip.Prefix
	// Rate (per second, default 20) and Burst (default 100) limit deliveries per client address
	// (IPv6 per /64, which one host typically holds whole). Over the limit a delivery is answered
	// 429 with Retry-After and not stored; Toss resends it later (§10.4). The limit counts
	// every merchant's deliveries from an address together, and Toss sends all of them from its
	// own few addresses: size it to the peak webhook traffic of all merchants.
	Rate  float64
	Burst int
	// StoreTimeout bounds the database work for one delivery (the merchant check, then the
	// insert), waiting for a pooled connection included. Past it the delivery is spooled and
	// answered 200. Default 3 s, so that both steps end well inside Toss's 10 s.
	StoreTimeout time.Duration
	// SpoolDir is where deliveries the database could not take are kept until the worker drains
	// them; give the worker the same directory. It must belong to this process. Empty disables
	// the spool: such a delivery is then answered 503 and Toss resends it.
	SpoolDir string
	// Notify, when set, is called after a delivery that needs the worker was stored; wire it to
	// (*Worker).Wake so the worker starts at once instead of at its next poll. It must not block.
	Notify func()
	// OnRateLimited, when set, is called for each delivery refused by the rate limit (a
	// metric). It must not block.
	OnRateLimited func()
}

// Inbox is the webhook handler for POST /webhooks/toss/{merchantId}, to be mounted with the
// prefix stripped (it sees /{merchantId}). It is safe for concurrent use.
type Inbox struct {
	pool    *pgxpool.Pool
	cfg     InboxConfig
	limiter *ratelimit.Keyed
	logger  *slog.Logger
}

var _ http.Handler = (*Inbox)(nil)

// NewInbox returns an inbox that stores deliveries in pool's webhook_inbox table. logger is a
// plain logger: the inbox adds component=webhook-inbox itself, so the caller must not add a
// component of its own. It panics when cfg.MerchantExists is nil: without it no merchant's
// URL could be told from a made-up one.
func NewInbox(pool *pgxpool.Pool, cfg InboxConfig, logger *slog.Logger) *Inbox {
	if cfg.MerchantExists == nil {
		panic("webhooks: InboxConfig.MerchantExists is required")
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.Rate <= 0 {
		cfg.Rate = DefaultRate
	}
	if cfg.Burst <= 0 {
		cfg.Burst = DefaultBurst
	}
	if cfg.StoreTimeout <= 0 {
		cfg.StoreTimeout = DefaultStoreTimeout
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Inbox{pool: pool, cfg: cfg, limiter: ratelimit.New(cfg.Rate, cfg.Burst, 0),
		logger: logger.With("component", "webhook-inbox")}
}

// ServeHTTP stores one delivery and answers it; see the package documentation for the answers.
// It reads the merchant from the path it sees, which must be exactly /{merchantId}.
func (in *Inbox) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Cheapest checks first: an address that may not deliver costs neither a bucket nor a query.
	client, clientOK := clientAddr(r.RemoteAddr)
	if len(in.cfg.AllowedIPs) > 0 && !(clientOK && allowed(in.cfg.AllowedIPs, client)) {
		in.logger.DebugContext(r.Context(), "webhook from an address not allowed", "remoteAddr", r.RemoteAddr)
		writeError(w, http.StatusForbidden, "FORBIDDEN", "this address may not deliver webhooks")
		return
	}
	key := r.RemoteAddr
	if clientOK {
		key = rateKey(client)
	}
	if ok, wait := in.limiter.Allow(key, time.Now()); !ok {
		in.logger.DebugContext(r.Context(), "webhook rate limited", "client", key)
		if in.cfg.OnRateLimited != nil {
			in.cfg.OnRateLimited()
		}
		w.Header().Set("Retry-After", ratelimit.RetryAfter(wait))
		writeError(w, http.StatusTooManyRequests, "RATE_LIMITED", "too many webhooks from this address; send it again later")
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", r.Method+" is not allowed; Toss delivers webhooks with POST")
		return
	}
	merchant, ok := merchantOf(r.URL.Path)
	if !ok {
		writeError(w, http.StatusNotFound, "NOT_FOUND", "no merchant at this webhook URL")
		return
	}
	if headerBytes(r.Header) > maxHeaderBytes {
		writeError(w, http.StatusRequestHeaderFieldsTooLarge, "HEADERS_TOO_LARGE", fmt.Sprintf("webhook headers must be at most %d bytes", maxHeaderBytes))
		return
	}
	if r.ContentLength > in.cfg.MaxBodyBytes {
		in.tooLarge(w)
		return
	}
	received := time.Now()
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, in.cfg.MaxBodyBytes))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		in.tooLarge(w)
		return
	}
	if err != nil {
		// The sender is gone or broke the framing: there is no delivery to keep.
		writeError(w, http.StatusBadRequest, "INVALID_WEBHOOK", "reading the body: "+err.Error())
		return
	}

	// Detached from the request: a sender that hangs up must not cancel a half-done insert.
	// One deadline for both steps, so a slow database still leaves time to spool.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), in.cfg.StoreTimeout)
	defer cancel()
	log := in.logger.With("merchantId", merchant)
	known, err := in.cfg.MerchantExists(ctx, merchant)
	switch {
	case err != nil:
		log.WarnContext(r.Context(), "merchant check failed; keeping the webhook under the unverified merchant", "error", err)
	case !known:
		log.DebugContext(r.Context(), "webhook for an unknown merchant")
		writeError(w, http.StatusNotFound, "NOT_FOUND", "no merchant at this webhook URL")
		return
	}

	line := spoolLine{ReceivedAt: received, Merchant: merchant, Headers: captureHeaders(r.Header), Body: body}
	d := classify(body)
	log = log.With("transmissionId", firstHeader(line.Headers, TransmissionIDHeader),
		"eventType", d.EventType, "orderId", d.OrderID, "status", d.Status)
	inserted, err := insertDelivery(ctx, in.pool, line, d)
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

func (in *Inbox) tooLarge(w http.ResponseWriter) {
	writeError(w, http.StatusRequestEntityTooLarge, "BODY_TOO_LARGE", fmt.Sprintf("a webhook body must be at most %d bytes", in.cfg.MaxBodyBytes))
}

func (in *Inbox) spool(line spoolLine) error {
	if in.cfg.SpoolDir == "" {
		return errors.New("no spool directory configured")
	}
	return appendSpool(in.cfg.SpoolDir, line)
}

// merchantOf reads the merchant from the path the handler sees: exactly one segment holding a
// valid merchant id. Anything else ("", "/", "/a/b", "/a/", a missing slash) is not a webhook URL.
func merchantOf(path string) (domain.MerchantID, bool) {
	seg, ok := strings.CutPrefix(path, "/")
	if !ok || strings.Contains(seg, "/") {
		return "", false
	}
	id, err := domain.ParseMerchantID(seg)
	return id, err == nil
}

// clientAddr is the TCP peer's address, without zone; IPv4 in IPv6 is unmapped so that one
// client has one form. ok is false when RemoteAddr is not an address (a Unix socket).
func clientAddr(remoteAddr string) (netip.Addr, bool) {
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return netip.Addr{}, false
	}
	return ap.Addr().Unmap().WithZone(""), true
}

func allowed(prefixes []netip.Prefix, a netip.Addr) bool {
	for _, p := range prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// rateKey is the bucket of a client: its IPv4 address, or its IPv6 /64, since one host is
// usually given a whole /64 and could otherwise take a fresh bucket per address.
func rateKey(a netip.Addr) string {
	if a.Is4() {
		return a.String()
	}
	return netip.PrefixFrom(a, 64).Masked().String()
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
	sum := sha256.Sum256(line.Body)
	body := line.Body
	if d.Status != StatusPending && len(body) > KeptPrefixBytes {
		// Nothing will be done with it: keep evidence (prefix, length, hash), not the bytes.
		body = body[:KeptPrefixBytes]
	}
	tag, err := pool.Exec(ctx, `
		INSERT INTO webhook_inbox (dedupe_key, transmission_id, event_type, order_id, merchant_id, headers, body,
		                           body_length, body_sha256, received_at, status, reject_reason, outcome, processed_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
		ON CONFLICT (dedupe_key) DO NOTHING`,
		dedupeKey(tid, line.Body), nullIfEmpty(tid), nullIfEmpty(d.EventType), nullIfEmpty(d.OrderID),
		nullIfEmpty(string(line.Merchant)), headers, body, len(line.Body), sum[:], line.ReceivedAt, d.Status,
		nullIfEmpty(rejectReason), nullIfEmpty(outcome), processedAt)
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

// headerBytes is the size of h's names and values.
func headerBytes(h http.Header) int {
	n := 0
	for name, values := range h {
		for _, v := range values {
			n += len(name) + len(v)
		}
	}
	return n
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
