package tosssim

import (
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/shopspring/decimal"
)

// Config configures a Simulator. The zero value is usable: New fills in the defaults.
type Config struct {
	// SecretKeys are the accepted secret keys. Empty accepts any key that starts with
	// "test_sk_", "test_gsk_" or "test_ak_" (toss-api.md §1).
	SecretKeys []string
	// MID is the merchant id on every payment and transaction. Default "tosssimmid01".
	MID string
	// Now is the clock. Default time.Now; tests inject one to cross the confirm window and
	// the one-second cancel rule without sleeping.
	Now func() time.Time
	// ConfirmWindow is how long an IN_PROGRESS payment may wait for its confirm before it is
	// EXPIRED. Default 10 minutes (toss-api.md §3).
	ConfirmWindow time.Duration
	// IdempotencyTTL is how long a stored idempotent answer is replayed. Default 15 days (§2).
	IdempotencyTTL time.Duration
	// Faults injects latency, errors and lost responses, and turns on webhooks. The zero
	// value injects nothing and sends no webhooks.
	Faults Faults
	// Settlement sets the fee and payout cycle of GET /v1/settlements rows.
	Settlement SettlementConfig
	// Logger receives what a persisted simulator cannot tell its clients: why a change could
	// not be saved (they get a bare 500). Default: discard.
	Logger *slog.Logger
	// MerchantName is the merchant the payment window (GET /sim/v1/window) names; Toss shows
	// the name registered for the client key, which the simulator does not have. Default
	// "Demo shop".
	MerchantName string
}

const (
	defaultMID            = "tosssimmid01"
	defaultConfirmWindow  = 10 * time.Minute
	defaultIdempotencyTTL = 15 * 24 * time.Hour
	consecutiveCancelGap  = time.Second
	defaultMerchantName   = "Demo shop"
)

// Status is a payment or transaction status (toss-api.md §5.4).
type Status string

// The statuses of toss-api.md §5.4. The simulator creates payments IN_PROGRESS, so READY and
// WAITING_FOR_DEPOSIT never occur; they are listed so switches stay exhaustive.
const (
	StatusReady             Status = "READY"
	StatusInProgress        Status = "IN_PROGRESS"
	StatusWaitingForDeposit Status = "WAITING_FOR_DEPOSIT"
	StatusDone              Status = "DONE"
	StatusCanceled          Status = "CANCELED"
	StatusPartialCanceled   Status = "PARTIAL_CANCELED"
	StatusAborted           Status = "ABORTED"
	StatusExpired           Status = "EXPIRED"
)

// Stats are the simulator's counters since New or Open; a persisted simulator does not save
// them.
type Stats struct {
	// ConfirmRequests counts every POST /v1/payments/confirm that passed auth, including
	// idempotent replays, 409s, Test-Code answers and injected errors.
	ConfirmRequests int `json:"confirmRequests"`
	// ConfirmsProcessed counts the confirms that executed (not replays, 409s or Test-Codes).
	ConfirmsProcessed int `json:"confirmsProcessed"`
	// Approvals counts payments that became DONE.
	Approvals int `json:"approvals"`
	// CancelRequests counts every POST /v1/payments/{paymentKey}/cancel that passed auth,
	// injected errors included.
	CancelRequests int `json:"cancelRequests"`
	// CancelsProcessed counts the cancels that executed (not replays, 409s or Test-Codes).
	CancelsProcessed int `json:"cancelsProcessed"`
	// ConsoleCancels counts the cancels asked of the merchant console: every ConsoleCancel
	// call and every POST /sim/v1/console/payments/{paymentKey}/cancel whose body could be
	// read, refused ones included. They are not in CancelRequests or CancelsProcessed, which
	// count calls of the API, so a test can tell what the system under test asked for from
	// what the merchant's staff did.
	ConsoleCancels int `json:"consoleCancels"`
	// InjectedErrors counts the /v1 answers of Faults.ErrorRate (nothing executed).
	InjectedErrors int `json:"injectedErrors"`
	// LostResponses counts the executed confirms and cancels whose connection was dropped
	// instead of answered (Faults.LostResponseRate).
	LostResponses int `json:"lostResponses"`
	// WebhooksSent counts the webhooks issued: one per status change, each with its own
	// transmission id, counted when queued.
	WebhooksSent int `json:"webhooksSent"`
	// WebhookDeliveries counts the HTTP POSTs made: first attempts, retries and duplicate
	// copies, successful or not.
	WebhookDeliveries int `json:"webhookDeliveries"`
	// WebhookFailures counts the webhooks given up after the first attempt and all 7 retries
	// failed (Toss's "실패" status, toss-api.md §10.4).
	WebhookFailures int `json:"webhookFailures"`
	// WebhooksPending counts the webhooks neither delivered (a 200) nor given up yet. Zero
	// means the sender is idle; webhooks dropped by Close stay counted.
	WebhooksPending int `json:"webhooksPending"`
}

// PaymentView is the simulator's current truth about one payment, for assertions.
type PaymentView struct {
	PaymentKey         string
	OrderID            string
	OrderName          string
	Method             string
	Status             Status
	TotalAmount        decimal.Decimal
	BalanceAmount      decimal.Decimal
	Approvals          int    // times the payment became DONE; more than 1 would be a simulator bug
	Cancels            int    // entries in cancels[]
	FailureCode        string // failure.code for ABORTED and EXPIRED payments
	LastTransactionKey string
}

// SessionRequest opens a payment as if the buyer had just authenticated in the payment window.
type SessionRequest struct {
	OrderID   string          // 6–64 characters of A-Za-z0-9-_
	Amount    decimal.Decimal // whole won, > 0
	OrderName string          // ≤ 100 characters, may be empty
	Method    string          // "카드" (default) or "간편결제" (a card paid through 토스페이)
	// ConfirmError is an error code of toss-api.md §8 that the confirm of this payment answers
	// instead of approving, ConfirmErrorTimes times (0 means once; negative means always).
	ConfirmError      string
	ConfirmErrorTimes int
	// ConfirmErrorOutcome is the payment's status after a ConfirmError answer: ABORTED,
	// IN_PROGRESS (unchanged) or DONE (approved although the answer was an error, as when a
	// response is lost). Empty chooses IN_PROGRESS for unknown-outcome codes (PROVIDER_ERROR,
	// CARD_PROCESSING_ERROR, *INTERNAL_SYSTEM_PROCESSING, UNKNOWN_PAYMENT_ERROR) and ABORTED
	// for the rest.
	ConfirmErrorOutcome Status
	// SettlementFeeRate, when not nil, is this payment's fee rate in GET /v1/settlements
	// instead of Config.Settlement.FeeRate: a fraction, 0 ≤ rate < 1 (0.035 is 3.5 %). It
	// stands for a merchant whose fee for this payment differs from the contract (a card
	// brand's own rate, a promotion), which reconciliation must notice.
	SettlementFeeRate *decimal.Decimal
}

// Simulator is a Toss Payments server whose truth lives in memory, optionally saved to
// PostgreSQL (Open). It is safe for concurrent use.
type Simulator struct {
	cfg     Config
	keys    map[string]bool // nil: accept the test prefixes
	idem    *idemStore
	handler http.Handler
	log     *slog.Logger
	// store saves every change before it is applied to memory; nil for a memory-only
	// simulator. Changes of state are saved with mu held, so they reach it in the order of
	// memory; an idempotent answer alone is saved without it.
	store *pgStore

	mu          sync.Mutex // guards everything below
	byKey       map[string]*payment
	byOrder     map[string]*payment
	retiredKeys map[string]bool // keys of payments a newer session replaced
	txs         []*transaction
	txByKey     map[string]*transaction
	stats       Stats
	byOrderN    map[string]int // executed confirms per orderId of the request

	rnd   *lockedRand    // fault decisions, seeded by Faults.Seed
	hooks *webhookSender // nil unless Faults.WebhookURL is set

	// beforeConfirmCommit, when set, runs between a confirm's checks and its outcome, with no
	// lock held. Tests use it to hold a confirm in flight.
	beforeConfirmCommit func(paymentKey string)
}

// New returns a memory-only Simulator with cfg's defaults filled in. When
// cfg.Faults.WebhookURL is set it starts the webhook sender; Close stops it.
func New(cfg Config) *Simulator {
	s := newSimulator(cfg)
	s.startWebhooks()
	return s
}

// newSimulator builds an empty simulator with the defaults filled in, its webhook sender not
// yet started.
func newSimulator(cfg Config) *Simulator {
	if cfg.MID == "" {
		cfg.MID = defaultMID
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.ConfirmWindow <= 0 {
		cfg.ConfirmWindow = defaultConfirmWindow
	}
	if cfg.IdempotencyTTL <= 0 {
		cfg.IdempotencyTTL = defaultIdempotencyTTL
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MerchantName == "" {
		cfg.MerchantName = defaultMerchantName
	}
	cfg.Faults = cfg.Faults.normalized()
	cfg.Settlement = cfg.Settlement.normalized()
	s := &Simulator{
		cfg:         cfg,
		idem:        newIdemStore(cfg.IdempotencyTTL),
		log:         cfg.Logger,
		byKey:       map[string]*payment{},
		byOrder:     map[string]*payment{},
		retiredKeys: map[string]bool{},
		txByKey:     map[string]*transaction{},
		byOrderN:    map[string]int{},
		rnd:         newLockedRand(cfg.Faults.Seed),
	}
	for _, k := range cfg.SecretKeys {
		if k = strings.TrimSpace(k); k != "" {
			if s.keys == nil {
				s.keys = map[string]bool{}
			}
			s.keys[k] = true
		}
	}
	s.handler = s.routes()
	return s
}

// startWebhooks starts the webhook sender when a webhook URL is configured.
func (s *Simulator) startWebhooks() {
	if s.cfg.Faults.WebhookURL != "" {
		s.hooks = newWebhookSender(s.cfg.Faults, s.rnd, s.cfg.Now)
	}
}

// Handler returns the HTTP handler. Every route is relative, so it works at the root of a
// server or behind http.StripPrefix.
func (s *Simulator) Handler() http.Handler { return s.handler }

// CreateSession opens an IN_PROGRESS card payment for orderID, like POST /sim/v1/sessions.
// It returns the new paymentKey, or an *Error (400 INVALID_REQUEST for bad input, 409
// DUPLICATED_ORDER_ID when the order is already approved or canceled, 500
// FAILED_INTERNAL_SYSTEM_PROCESSING, wrapping the cause, when a persisted simulator cannot save
// the session).
func (s *Simulator) CreateSession(orderID string, amount decimal.Decimal, orderName string) (string, error) {
	return s.CreateSessionWith(SessionRequest{OrderID: orderID, Amount: amount, OrderName: orderName})
}

// Close stops the webhook sender and waits for it: pending retries are dropped and in-flight
// POSTs canceled. A persisted simulator then waits for the change being saved, if any, stops
// saving and releases its database (the owner lock), so another simulator may Open it. The
// HTTP handler keeps working, but later changes send no webhooks, and on a persisted
// simulator they fail with 500 FAILED_INTERNAL_SYSTEM_PROCESSING while reads still answer.
// Close is safe to call more than once; on a memory simulator without a webhook URL it does
// nothing.
func (s *Simulator) Close() {
	if s.hooks != nil {
		s.hooks.close()
	}
	if s.store != nil {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.store.close()
	}
}

// Stats returns a snapshot of the counters.
func (s *Simulator) Stats() Stats {
	s.mu.Lock()
	st := s.stats
	s.mu.Unlock()
	s.addWebhookStats(&st)
	return st
}

// addWebhookStats fills in the sender's counters, which live outside s.mu.
func (s *Simulator) addWebhookStats(st *Stats) {
	if s.hooks == nil {
		return
	}
	st.WebhooksSent = int(s.hooks.sent.Load())
	st.WebhookDeliveries = int(s.hooks.deliveries.Load())
	st.WebhookFailures = int(s.hooks.failures.Load())
	st.WebhooksPending = int(s.hooks.pending.Load())
}

// ConfirmsFor returns how many confirms executed for orderID (the orderId in the request
// body), across restarts for a persisted simulator. Idempotent replays, 409s and Test-Code
// answers are not counted; they are in Stats.ConfirmRequests only.
func (s *Simulator) ConfirmsFor(orderID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.byOrderN[orderID]
}

// Payment returns the current truth about the newest payment of orderID. On a persisted
// simulator whose store fails to save an expiry that has become due, it shows the payment as
// saved (IN_PROGRESS); the next route that touches the payment tries again.
func (s *Simulator) Payment(orderID string) (PaymentView, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.byOrder[orderID]
	if p == nil {
		return PaymentView{}, false
	}
	c := &change{}
	s.expireIfDue(c, p, s.cfg.Now())
	// Applying a change overwrites the live payment, so p shows the expiry once it is saved.
	if err := s.commit(c); err != nil {
		s.logStoreFailure("expiry", err)
	}
	return viewOf(p), true
}

// viewOf is p as a PaymentView. Callers hold s.mu, or own p.
func viewOf(p *payment) PaymentView {
	v := PaymentView{
		PaymentKey:         p.key,
		OrderID:            p.orderID,
		OrderName:          p.orderName,
		Method:             p.method,
		Status:             p.status,
		TotalAmount:        p.total,
		BalanceAmount:      p.balance,
		Approvals:          p.approvals,
		Cancels:            len(p.cancels),
		LastTransactionKey: p.lastTxKey,
	}
	if p.failure != nil {
		v.FailureCode = p.failure.Code
	}
	return v
}

func (s *Simulator) statsWithConfirms() (Stats, map[string]int) {
	s.mu.Lock()
	st, confirms := s.stats, maps.Clone(s.byOrderN)
	s.mu.Unlock()
	s.addWebhookStats(&st)
	return st, confirms
}

var orderIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{6,64}$`)

// supportedMethods are the method labels a session may use; both end with a card object.
var supportedMethods = map[string]bool{"카드": true, "간편결제": true}

// CreateSessionWith opens an IN_PROGRESS payment as described by req. A session for an
// orderId that is READY, IN_PROGRESS, ABORTED or EXPIRED replaces that payment, whose
// paymentKey is then unknown; one for an orderId that is DONE or canceled is 409
// DUPLICATED_ORDER_ID.
func (s *Simulator) CreateSessionWith(req SessionRequest) (string, error) {
	if req.Method == "" {
		req.Method = "카드"
	}
	if !orderIDPattern.MatchString(req.OrderID) ||
		!req.Amount.IsInteger() || !req.Amount.IsPositive() ||
		utf8.RuneCountInString(req.OrderName) > 100 ||
		!supportedMethods[req.Method] {
		return "", apiError("INVALID_REQUEST")
	}
	if req.ConfirmError != "" {
		if _, ok := errorTable[req.ConfirmError]; !ok {
			return "", apiError("INVALID_REQUEST")
		}
	}
	switch req.ConfirmErrorOutcome {
	case "", StatusAborted, StatusInProgress, StatusDone:
	default:
		return "", apiError("INVALID_REQUEST")
	}
	if req.SettlementFeeRate != nil && !validFeeRate(*req.SettlementFeeRate) {
		return "", apiError("INVALID_REQUEST")
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.cfg.Now()
	c := &change{}
	if old := s.byOrder[req.OrderID]; old != nil {
		old = s.expireIfDue(c, old, now)
		if old.confirming {
			// Its confirm already passed its checks; the order is as good as processed.
			return "", apiError("DUPLICATED_ORDER_ID")
		}
		switch old.status {
		case StatusDone, StatusCanceled, StatusPartialCanceled, StatusWaitingForDeposit:
			return "", apiError("DUPLICATED_ORDER_ID")
		case StatusReady, StatusInProgress, StatusAborted, StatusExpired:
			c.edit(old).retired = true
		}
	}
	p := &payment{
		key:             s.newPaymentKey(now),
		orderID:         req.OrderID,
		orderName:       req.OrderName,
		method:          req.Method,
		total:           req.Amount,
		balance:         req.Amount,
		status:          StatusInProgress,
		requestedAt:     now.Truncate(time.Second),
		authenticatedAt: now,
		confirmErr:      req.ConfirmError,
		confirmErrLeft:  req.ConfirmErrorTimes,
		confirmOutcome:  req.ConfirmErrorOutcome,
	}
	if req.SettlementFeeRate != nil {
		rate := *req.SettlementFeeRate // the caller's pointer must not alias the simulator's truth
		p.feeRate = &rate
	}
	if p.confirmErr != "" && p.confirmErrLeft == 0 {
		p.confirmErrLeft = 1
	}
	// The old payment, if any, is retired before the new one takes its order.
	c.payments = append(c.payments, p)
	if err := s.commit(c); err != nil {
		s.logStoreFailure("session", err)
		return "", fmt.Errorf("%w: %w", apiError("FAILED_INTERNAL_SYSTEM_PROCESSING"), err)
	}
	return p.key, nil
}
