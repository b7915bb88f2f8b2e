// Package queries holds the read-side services: they answer questions from the read models the
// projections maintain (and, for a payment's history, from its event stream). They take and
// return plain Go values; the JSON field names are the query API's.
package queries

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"

	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/eventstore"
)

// StreamReader is what the payment history needs of the event store: a stream checked against
// its recorded head, so that nobody is shown edited history as the truth.
type StreamReader interface {
	ReadVerified(ctx context.Context, stream string) ([]eventstore.RecordedEvent, error)
}

// Service answers payment queries. Every method takes the merchant the caller acts for and
// answers from that merchant's payments only: another merchant's payment is not found.
type Service struct {
	pool   *pgxpool.Pool
	events StreamReader
}

// New returns a Service.
func New(pool *pgxpool.Pool, events StreamReader) *Service {
	return &Service{pool: pool, events: events}
}

// Payment is one payment as the read model shows it.
type Payment struct {
	OrderID            string          `json:"orderId"`
	MerchantID         string          `json:"merchantId"`
	BuyerID            string          `json:"buyerId"`
	OrderName          string          `json:"orderName"`
	Amount             decimal.Decimal `json:"amount"`
	Currency           string          `json:"currency"`
	Status             string          `json:"status"`
	PaymentKey         string          `json:"paymentKey,omitempty"`
	Method             string          `json:"method,omitempty"`
	Attempt            int             `json:"attempt"`
	ApprovedAt         *time.Time      `json:"approvedAt,omitempty"`
	LastTransactionKey string          `json:"lastTransactionKey,omitempty"`
	Failure            *Failure        `json:"failure,omitempty"`
	NeedsReview        bool            `json:"needsReview"`
	CanceledAmount     decimal.Decimal `json:"canceledAmount"`
	CancelPending      bool            `json:"cancelPending"`
	ExpiresAt          time.Time       `json:"expiresAt"`
	CreatedAt          time.Time       `json:"createdAt"`
	UpdatedAt          time.Time       `json:"updatedAt"`
	Lines              []Line          `json:"lines,omitempty"`
	History            []HistoryEntry  `json:"history,omitempty"`
	// Reconciliation lists the differences with Toss that reconciliation left for a person
	// (single payment reads only); each makes the payment need review.
	Reconciliation []OpenDifference `json:"reconciliation,omitempty"`
}

// OpenDifference is a difference with Toss on the needs-review list.
type OpenDifference struct {
	Category       string    `json:"category"`
	TransactionKey string    `json:"transactionKey,omitempty"`
	Ours           string    `json:"ours"`
	Toss           string    `json:"toss"`
	Detail         string    `json:"detail"`
	Since          time.Time `json:"since"`
}

// Failure is why a payment failed, expired, or why its outcome is unknown.
type Failure struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Source  string `json:"source,omitempty"`
}

// Line is one seller's part of an order.
type Line struct {
	LineID    string          `json:"lineId"`
	SellerID  string          `json:"sellerId"`
	ProductID string          `json:"productId"`
	Amount    decimal.Decimal `json:"amount"`
	Status    string          `json:"status"`
}

// HistoryEntry is one stored event of the payment.
type HistoryEntry struct {
	Version    int64           `json:"version"`
	Type       string          `json:"type"`
	EventID    string          `json:"eventId"`
	RecordedAt time.Time       `json:"recordedAt"`
	Actor      string          `json:"actor"`
	Data       json.RawMessage `json:"data"`
}

// paymentColumns read a payment_orders row o. A payment whose stored history failed
// verification (broken_streams), or with a difference from Toss that reconciliation left for a
// person (an open row of reconciliation_differences), needs review whatever its row says.
const paymentColumns = `o.order_id, o.merchant_id, o.buyer_id, o.order_name, o.total_amount, o.currency, o.status,
	COALESCE(o.payment_key, ''), COALESCE(o.method, ''), o.attempt, o.approved_at, COALESCE(o.last_transaction_key, ''),
	o.failure_code, o.failure_message, o.failure_source, o.needs_review OR ` + brokenStream + ` OR ` + openDifference + `, o.canceled_amount, o.cancel_pending,
	o.expires_at, o.created_at, o.updated_at`

const brokenStream = `EXISTS (SELECT 1 FROM broken_streams b WHERE b.stream_id = 'payment-' || o.order_id)`

const openDifference = `EXISTS (SELECT 1 FROM reconciliation_differences d
	WHERE d.merchant_id = o.merchant_id AND d.order_id = o.order_id AND d.resolved_at IS NULL)`

func scanPayment(row pgx.Row) (Payment, error) {
	var p Payment
	var code, msg, source *string
	err := row.Scan(&p.OrderID, &p.MerchantID, &p.BuyerID, &p.OrderName, &p.Amount, &p.Currency, &p.Status,
		&p.PaymentKey, &p.Method, &p.Attempt, &p.ApprovedAt, &p.LastTransactionKey,
		&code, &msg, &source, &p.NeedsReview, &p.CanceledAmount, &p.CancelPending, &p.ExpiresAt, &p.CreatedAt, &p.UpdatedAt)
	if err != nil {
		return Payment{}, err
	}
	if code != nil {
		p.Failure = &Failure{Code: *code, Message: deref(msg), Source: deref(source)}
	}
	if p.ApprovedAt != nil {
		at := p.ApprovedAt.In(domain.KST)
		p.ApprovedAt = &at
	}
	p.ExpiresAt, p.CreatedAt, p.UpdatedAt = p.ExpiresAt.In(domain.KST), p.CreatedAt.In(domain.KST), p.UpdatedAt.In(domain.KST)
	return p, nil
}

// Payment returns one payment with its lines and its event history.
//
// It is read from the payment's own event stream, not from the payment_orders read model: a
// single payment's read reflects every command already answered (a merchant's success page
// reads it right after confirm). Lists come from the read model and may trail by milliseconds.
func (s *Service) Payment(ctx context.Context, merchant domain.MerchantID, orderID string) (Payment, error) {
	notFound := domain.Errorf(domain.ErrPaymentNotFound, "no payment with orderId %s", clip(orderID, 64))
	if merchant == "" {
		return Payment{}, errors.New("queries: payment without a merchant")
	}
	id, err := domain.ParseOrderID(orderID)
	if err != nil {
		return Payment{}, notFound // no payment can have this id; the store need not be asked
	}
	recs, err := s.events.ReadVerified(ctx, domain.StreamName(id))
	if errors.Is(err, eventstore.ErrStreamNotFound) {
		return Payment{}, notFound
	}
	if errors.Is(err, eventstore.ErrChainBroken) {
		return Payment{}, domain.Errorf(domain.ErrHistoryBroken,
			"the stored history of order %s failed verification; it is flagged for review (paymentctl audit names the event)", id)
	}
	if err != nil {
		return Payment{}, fmt.Errorf("history of %s: %w", orderID, err)
	}
	events := make([]domain.Event, 0, len(recs))
	for _, r := range recs {
		e, err := domain.UnmarshalEvent(r.Type, r.SchemaVersion, r.Data)
		if err != nil {
			return Payment{}, fmt.Errorf("history of %s v%d: %w", orderID, r.Version, err)
		}
		events = append(events, e)
	}
	pay, err := domain.Rebuild(events)
	if err != nil {
		return Payment{}, fmt.Errorf("fold %s: %w", orderID, err)
	}
	if pay.MerchantID != merchant {
		return Payment{}, notFound // exactly as if it did not exist
	}
	p := Payment{
		OrderID: string(pay.OrderID), MerchantID: string(pay.MerchantID), BuyerID: string(pay.BuyerID),
		OrderName: pay.OrderName, Amount: pay.TotalAmount, Currency: string(pay.Currency), Status: string(pay.Status),
		PaymentKey: string(pay.PaymentKey), Method: pay.Method, Attempt: pay.Attempt,
		LastTransactionKey: pay.LastTxKey, NeedsReview: pay.NeedsReview, CanceledAmount: pay.CanceledAmount,
		CancelPending: pay.PendingCancel() != nil, Failure: failureOf(events),
		ExpiresAt: pay.ExpiresAt.In(domain.KST), CreatedAt: pay.CreatedAt.In(domain.KST),
		UpdatedAt: events[len(events)-1].Header().At.In(domain.KST),
	}
	if !pay.ApprovedAt.IsZero() {
		at := pay.ApprovedAt.In(domain.KST)
		p.ApprovedAt = &at
	}
	for _, l := range pay.Lines {
		p.Lines = append(p.Lines, Line{LineID: string(l.LineID), SellerID: string(l.SellerID),
			ProductID: string(l.ProductID), Amount: l.Amount, Status: p.Status})
	}
	if p.Reconciliation, err = s.openDifferences(ctx, merchant, id); err != nil {
		return Payment{}, err
	}
	p.NeedsReview = p.NeedsReview || len(p.Reconciliation) > 0
	for _, r := range recs {
		p.History = append(p.History, HistoryEntry{
			Version: r.Version, Type: r.Type, EventID: r.ID.String(),
			RecordedAt: r.RecordedAt.In(domain.KST), Actor: r.Metadata.Actor, Data: json.RawMessage(r.Data),
		})
	}
	return p, nil
}

// openDifferences reads the payment's open rows of reconciliation_differences.
func (s *Service) openDifferences(ctx context.Context, merchant domain.MerchantID, id domain.OrderID) ([]OpenDifference, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT category, transaction_key, ours, toss, detail, first_seen FROM reconciliation_differences
		WHERE merchant_id = $1 AND order_id = $2 AND resolved_at IS NULL ORDER BY first_seen, category, transaction_key`, merchant, id)
	if err != nil {
		return nil, fmt.Errorf("differences of %s: %w", id, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (OpenDifference, error) {
		var d OpenDifference
		err := r.Scan(&d.Category, &d.TransactionKey, &d.Ours, &d.Toss, &d.Detail, &d.Since)
		d.Since = d.Since.In(domain.KST)
		return d, err
	})
	if err != nil {
		return nil, fmt.Errorf("differences of %s: %w", id, err)
	}
	return out, nil
}

// failureOf says why a payment failed, expired or has an unknown outcome, from its events: the
// same rules as the payment_orders read model, so a payment reads the same in lists and alone.
func failureOf(events []domain.Event) *Failure {
	var f *Failure
	for _, e := range events {
		switch e := e.(type) {
		case domain.PaymentApproved, domain.PaymentApprovedAtPSP:
			f = nil
		case domain.PaymentRejected:
			f = &Failure{Code: e.Code, Message: e.Message, Source: string(e.Source)}
		case domain.PaymentOutcomeUnknown:
			f = &Failure{Code: e.Code, Message: e.Message, Source: "unknown"}
		case domain.PaymentExpired:
			f = &Failure{Code: "EXPIRED", Message: e.Reason}
		case domain.RecoveryExhausted:
			f = &Failure{Code: "RECOVERY_EXHAUSTED", Source: "recovery",
				Message: fmt.Sprintf("recovery gave up after %d attempts: %s", e.Attempts, e.LastError)}
		}
	}
	return f
}

// ListQuery selects a page of payments, newest first. Every filter is optional; they combine
// with AND. Build one from request parameters with ParseListQuery.
type ListQuery struct {
	Limit       int    // 1–100, default 20
	Cursor      string // from the previous page's NextCursor; empty for the first page
	Status      string // a payment status
	NeedsReview bool   // only payments that need a person: recovery gave up, broken history, a difference with Toss

	// Q finds a payment by what a person has at hand: an orderId prefix, a buyerId, a
	// paymentKey, or words of the orderName (case-insensitive; a q of one or two characters
	// matches the start of the name, since searching anywhere needs three).
	Q string
	// From and To bound the creation time: From ≤ createdAt < To. Zero means open.
	From, To time.Time
	// Type is TypePayment (payments never refunded) or TypeCancel (payments with a refund).
	Type     string
	SellerID string // payments with a line of this seller
	// MinAmount and MaxAmount bound the payment's total, both included.
	MinAmount, MaxAmount *decimal.Decimal
}

// ParseListQuery reads the filters of a payments list from request parameters (the query API's
// and the back office's forms alike): status, needsReview, q, from, to, type, sellerId,
// minAmount, maxAmount. from and to take a KST date (2026-12-01: from its start, to its end,
// both days included) or an RFC 3339 time (from included, to excluded). Every problem is
// reported at once, as an invalid-input error. Limit and cursor are the caller's.
func ParseListQuery(v url.Values) (ListQuery, error) {
	q := ListQuery{Status: v.Get("status"), Q: strings.TrimSpace(v.Get("q")), Type: v.Get("type"), SellerID: v.Get("sellerId")}
	var errs []error
	if s := v.Get("needsReview"); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil {
			errs = append(errs, domain.Errorf(domain.ErrInvalidInput, "needsReview must be true or false, got %q", clip(s, 20)))
		}
		q.NeedsReview = b
	}
	for _, t := range []struct {
		name string
		dst  *time.Time
		end  bool
	}{{"from", &q.From, false}, {"to", &q.To, true}} {
		s := v.Get(t.name)
		if s == "" {
			continue
		}
		if d, err := time.ParseInLocation(time.DateOnly, s, domain.KST); err == nil {
			if t.end {
				d = d.AddDate(0, 0, 1) // the whole day included
			}
			*t.dst = d
		} else if ts, err := time.Parse(time.RFC3339Nano, s); err == nil && ts.Year() >= 2000 && ts.Year() <= 9999 {
			*t.dst = ts
		} else {
			errs = append(errs, domain.Errorf(domain.ErrInvalidInput, "%s must be a date (2026-12-01, KST) or an RFC 3339 time, got %q", t.name, clip(s, 40)))
		}
	}
	for _, a := range []struct {
		name string
		dst  **decimal.Decimal
	}{{"minAmount", &q.MinAmount}, {"maxAmount", &q.MaxAmount}} {
		s := v.Get(a.name)
		if s == "" {
			continue
		}
		// Whole won, as the API writes amounts (the OpenAPI Amount pattern): no sign, fraction
		// or exponent, at most MaxAmount's digits.
		if !wholeWon.MatchString(s) {
			errs = append(errs, domain.Errorf(domain.ErrInvalidInput, "%s must be a whole number of won such as 15000, got %q", a.name, clip(s, 40)))
			continue
		}
		d := decimal.RequireFromString(s)
		*a.dst = &d
	}
	return q, domain.InvalidInputs(append(errs, q.validate())...)
}

// The values of ListQuery.Type.
const (
	TypePayment = "payment" // no refund: canceled amount 0
	TypeCancel  = "cancel"  // a refund made: canceled amount > 0
)

// Page is one page of payments. NextCursor is empty on the last page.
type Page struct {
	Payments   []Payment `json:"payments"`
	NextCursor string    `json:"nextCursor,omitempty"`
}

// Limits of ListPayments.
const (
	DefaultPageSize = 20
	MaxPageSize     = 100
)

// ListPayments returns payments newest first, with keyset (cursor) pagination: a page never
// repeats or skips a row because of inserts between requests.
func (s *Service) ListPayments(ctx context.Context, merchant domain.MerchantID, q ListQuery) (Page, error) {
	if merchant == "" {
		return Page{}, errors.New("queries: list without a merchant")
	}
	if q.Limit == 0 {
		q.Limit = DefaultPageSize
	}
	if q.Limit < 1 || q.Limit > MaxPageSize {
		return Page{}, domain.Errorf(domain.ErrInvalidInput, "limit must be between 1 and %d", MaxPageSize)
	}
	if err := q.validate(); err != nil {
		return Page{}, err
	}
	after, afterID, err := decodePaymentsCursor(q)
	if err != nil {
		return Page{}, err
	}
	sql, args := q.pageSQL(merchant, after, afterID, q.Limit+1)
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return Page{}, fmt.Errorf("list payments: %w", err)
	}
	payments, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Payment, error) { return scanPayment(r) })
	if err != nil {
		return Page{}, fmt.Errorf("list payments: %w", err)
	}
	page := Page{Payments: payments}
	if len(payments) > q.Limit {
		page.Payments = payments[:q.Limit]
		last := page.Payments[q.Limit-1]
		page.NextCursor = encodePaymentsCursor(q, last.CreatedAt, last.OrderID)
	}
	if page.Payments == nil {
		page.Payments = []Payment{}
	}
	return page, nil
}

func knownStatus(s string) bool {
	switch domain.Status(s) {
	case domain.StatusNotStarted, domain.StatusExecuting, domain.StatusSuccess, domain.StatusFailure,
		domain.StatusUnknown, domain.StatusExpired, domain.StatusPartiallyCanceled, domain.StatusCanceled:
		return true
	}
	return false
}

// validate checks the filters' values (ParseListQuery already did for parsed ones).
func (q ListQuery) validate() error {
	var errs []error
	if q.Status != "" && !knownStatus(q.Status) {
		errs = append(errs, domain.Errorf(domain.ErrInvalidInput, "unknown status %q", clip(q.Status, 40)))
	}
	if q.Type != "" && q.Type != TypePayment && q.Type != TypeCancel {
		errs = append(errs, domain.Errorf(domain.ErrInvalidInput, "type must be %s or %s, got %q", TypePayment, TypeCancel, clip(q.Type, 40)))
	}
	if !utf8.ValidString(q.Q) || utf8.RuneCountInString(q.Q) > maxSearchLen || strings.ContainsFunc(q.Q, unicode.IsControl) {
		errs = append(errs, domain.Errorf(domain.ErrInvalidInput, "q must be at most %d characters of text", maxSearchLen))
	}
	if q.SellerID != "" {
		errs = append(errs, checkSeller(domain.SellerID(q.SellerID)))
	}
	if !q.From.IsZero() && !q.To.IsZero() && !q.From.Before(q.To) {
		errs = append(errs, domain.Errorf(domain.ErrInvalidInput, "from must be before to"))
	}
	if q.MinAmount != nil && q.MaxAmount != nil && q.MinAmount.GreaterThan(*q.MaxAmount) {
		errs = append(errs, domain.Errorf(domain.ErrInvalidInput, "minAmount must not be more than maxAmount"))
	}
	return domain.InvalidInputs(errs...)
}

// minNameSearch is the shortest q matched anywhere in the order name; a shorter one matches
// the name's start (see ListQuery.Q).
const minNameSearch = 3

// checkSeller checks a seller id asked about by the rule a checkout's sellerId passes: at most
// MaxIdentifierLen characters of text (no control characters, valid UTF-8, which PostgreSQL
// would otherwise refuse with a 500).
func checkSeller(s domain.SellerID) error {
	if s == "" {
		return domain.Errorf(domain.ErrInvalidInput, "sellerId is required")
	}
	if !utf8.ValidString(string(s)) || utf8.RuneCountInString(string(s)) > domain.MaxIdentifierLen || strings.ContainsFunc(string(s), unicode.IsControl) {
		return domain.Errorf(domain.ErrInvalidInput, "sellerId must be at most %d characters of text", domain.MaxIdentifierLen)
	}
	return nil
}

// wholeWon is an amount filter's form: 0, or a whole number of won of at most 13 digits.
var wholeWon = regexp.MustCompile(`^(0|[1-9][0-9]{0,12})$`)

// maxSearchLen bounds q (characters): an order id is at most 64 characters, a paymentKey 200.
const maxSearchLen = 200

// pageSQL is the statement of the page of at most limit payments that match the filters, newest
// first, after the keyset (after, afterID) when after is set, with its arguments.
//
// The filters that are a choice between conditions (q: an orderId prefix, a buyerId, a
// paymentKey or words of the name; needsReview: the row's flag, a broken history or an open
// difference) are not written as one OR: the planner can use no index for an OR across columns
// and would read the merchant's payments newest first until the page is full, which for a rare
// match is all of them. Each combination of the choices is a branch of its own, ordered and
// limited on the index that fits it, and the page is the newest of their union: the same rows
// as the OR, since a row among the newest `limit` of the OR is among the newest `limit` of a
// branch it matches.
func (q ListQuery) pageSQL(merchant domain.MerchantID, after *time.Time, afterID string, limit int) (string, []any) {
	args := []any{merchant}
	arg := func(v any) string { args = append(args, v); return fmt.Sprintf("$%d", len(args)) }
	conds := []string{"o.merchant_id = $1"}
	if q.Status != "" {
		conds = append(conds, "o.status = "+arg(q.Status))
	}
	if !q.From.IsZero() {
		conds = append(conds, "o.created_at >= "+arg(q.From))
	}
	if !q.To.IsZero() {
		conds = append(conds, "o.created_at < "+arg(q.To))
	}
	switch q.Type {
	case TypePayment:
		conds = append(conds, "o.canceled_amount = 0")
	case TypeCancel:
		conds = append(conds, "o.canceled_amount > 0")
	}
	if q.SellerID != "" {
		conds = append(conds, "EXISTS (SELECT 1 FROM payment_order_lines l WHERE l.order_id = o.order_id AND l.seller_id = "+arg(q.SellerID)+")")
	}
	if q.MinAmount != nil {
		conds = append(conds, "o.total_amount >= "+arg(*q.MinAmount))
	}
	if q.MaxAmount != nil {
		conds = append(conds, "o.total_amount <= "+arg(*q.MaxAmount))
	}
	if after != nil {
		conds = append(conds, "(o.created_at, o.order_id) < ("+arg(*after)+"::timestamptz, "+arg(afterID)+"::text)")
	}
	branches := []string{""}
	choose := func(alternatives ...string) {
		var next []string
		for _, b := range branches {
			for _, a := range alternatives {
				next = append(next, b+"\n\t\t  AND "+a)
			}
		}
		branches = next
	}
	if q.Q != "" {
		p := arg(q.Q)
		// text_pattern_ops index for the prefix, btree for the ids, trigram GIN for the name.
		var name string
		if utf8.RuneCountInString(q.Q) < minNameSearch {
			// Trigrams need three characters: a shorter q matches the start of the name, on
			// the (merchant_id, lower(order_name)) prefix index.
			name = "lower(o.order_name) LIKE " + arg(likePrefix(strings.ToLower(q.Q)))
		} else {
			name = "o.order_name ILIKE " + arg("%"+escapeLike(q.Q)+"%")
		}
		choose("o.order_id LIKE "+arg(likePrefix(q.Q)), "o.buyer_id = "+p, "o.payment_key = "+p, name)
	}
	if q.NeedsReview {
		choose("o.needs_review",
			"o.order_id IN (SELECT substr(b.stream_id, 9) FROM broken_streams b WHERE b.stream_id LIKE 'payment-%')",
			"o.order_id IN (SELECT d.order_id FROM reconciliation_differences d WHERE d.merchant_id = $1 AND d.resolved_at IS NULL)")
	}
	where := strings.Join(conds, "\n\t\t  AND ")
	lim := arg(limit)
	const order = "ORDER BY o.created_at DESC, o.order_id DESC"
	if len(branches) == 1 {
		return "SELECT " + paymentColumns + " FROM payment_orders o\n\t\tWHERE " + where + branches[0] + "\n\t\t" + order + " LIMIT " + lim, args
	}
	parts := make([]string, len(branches))
	for i, b := range branches {
		parts[i] = "(SELECT o.created_at, o.order_id FROM payment_orders o WHERE " + where + b + "\n\t\t" + order + " LIMIT " + lim + ")"
	}
	return "SELECT " + paymentColumns + " FROM payment_orders o WHERE o.order_id IN (\n\t\tSELECT u.order_id FROM (" +
		strings.Join(parts, "\n\t\tUNION\n\t\t") + ") u ORDER BY u.created_at DESC, u.order_id DESC LIMIT " + lim + ")\n\t\t" + order, args
}

// escapeLike quotes LIKE's wildcards (the default escape character is the backslash).
func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

func likePrefix(s string) string { return escapeLike(s) + "%" }

// filterKey is the filters in one canonical string: a cursor is bound to it.
func (q ListQuery) filterKey() string {
	amount := func(d *decimal.Decimal) string {
		if d == nil {
			return ""
		}
		return d.String()
	}
	key := strings.Join([]string{q.Status, strconv.FormatBool(q.NeedsReview), q.Q, q.From.UTC().Format(time.RFC3339Nano),
		q.To.UTC().Format(time.RFC3339Nano), q.Type, q.SellerID, amount(q.MinAmount), amount(q.MaxAmount)}, "\x00")
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:12])
}

// A payments cursor holds a digest of the list's filters and the keyset (creation time in
// microseconds, order id) of the last row shown; a cursor of a list with other filters is
// refused, since its keyset means nothing there.
func encodePaymentsCursor(q ListQuery, t time.Time, orderID string) string {
	return encodeCursorFields("payments", q.filterKey(), strconv.FormatInt(t.UnixMicro(), 10), orderID)
}

func decodePaymentsCursor(q ListQuery) (*time.Time, string, error) {
	if q.Cursor == "" {
		return nil, "", nil
	}
	f, err := decodeCursorFields(q.Cursor, 4)
	if err != nil {
		return nil, "", err
	}
	t, timeOK := cursorTime(f[2])
	// The checksum is unkeyed, so a cursor can be forged: its order id is checked like any
	// input before it reaches the database (which refuses NUL and invalid UTF-8 in text).
	_, idErr := domain.ParseOrderID(f[3])
	if f[0] != "payments" || f[1] != q.filterKey() || !timeOK || idErr != nil {
		return nil, "", domain.Errorf(domain.ErrInvalidInput, "cursor %q is not one this list returned (another list's, or other filters)", clip(q.Cursor, 40))
	}
	return &t, f[3], nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// ExportBatchSize is the number of payments EachPayment reads per statement.
const ExportBatchSize = 2000

// EachPayment calls fn with every payment of the merchant that matches q's filters, newest first
// (q.Cursor, if set, resumes after it; q.Limit is ignored), until fn returns an error, which
// EachPayment returns. It reads keyset batches of ExportBatchSize, each its own short statement,
// so that memory stays bounded and no snapshot is held open for the whole export: a long one
// would hold back the event store's readers (see eventstore.ConfigurePool). The export is
// therefore not one snapshot: a payment created during it is not listed (it is newer than the
// first batch), and one that changes is shown as it was when its batch was read. Cancelling ctx
// stops it between or during batches with ctx's error.
func (s *Service) EachPayment(ctx context.Context, merchant domain.MerchantID, q ListQuery, fn func(Payment) error) error {
	if merchant == "" {
		return errors.New("queries: export without a merchant")
	}
	if err := q.validate(); err != nil {
		return err
	}
	after, afterID, err := decodePaymentsCursor(q)
	if err != nil {
		return err
	}
	batch := make([]Payment, 0, ExportBatchSize)
	for {
		sql, args := q.pageSQL(merchant, after, afterID, ExportBatchSize)
		rows, err := s.pool.Query(ctx, sql, args...)
		if err != nil {
			return fmt.Errorf("export payments: %w", err)
		}
		batch, err = pgx.AppendRows(batch[:0], rows, func(r pgx.CollectableRow) (Payment, error) { return scanPayment(r) })
		if err != nil {
			return fmt.Errorf("export payments: %w", err)
		}
		for _, p := range batch {
			if err := fn(p); err != nil {
				return err
			}
		}
		if len(batch) < ExportBatchSize {
			return nil
		}
		last := batch[len(batch)-1]
		t := last.CreatedAt
		after, afterID = &t, last.OrderID
	}
}
