package tosssim

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/shopspring/decimal"
)

const (
	maxBodyBytes         = 1 << 20
	maxIdempotencyKeyLen = 300 // characters (§2)
	maxCancelReasonLen   = 200 // characters (§4.4)
	maxPaymentKeyLen     = 200 // characters (§4.1)
)

// routeKind says which counters a /v1 request feeds.
type routeKind int

const (
	kindRead routeKind = iota
	kindConfirm
	kindCancel
)

// endpoint is a /v1 route's business logic: it gets the request with its already-read body
// and returns the answer, which the caller may store for idempotent replay.
type endpoint func(x *exchange) response

func (s *Simulator) routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("POST /v1/payments/confirm", s.api(kindConfirm, s.handleConfirm))
	mux.Handle("GET /v1/payments/{paymentKey}", s.api(kindRead, s.handleGetByKey))
	mux.Handle("GET /v1/payments/orders/{orderId}", s.api(kindRead, s.handleGetByOrder))
	mux.Handle("POST /v1/payments/{paymentKey}/cancel", s.api(kindCancel, s.handleCancel))
	mux.Handle("GET /v1/transactions", s.api(kindRead, s.handleTransactions))
	mux.Handle("GET /v1/settlements", s.api(kindRead, s.handleSettlements))
	mux.HandleFunc("POST /sim/v1/sessions", s.handleCreateSession)
	mux.HandleFunc("POST /sim/v1/console/payments/{paymentKey}/cancel", s.handleConsoleCancel)
	mux.HandleFunc("GET /sim/v1/stats", s.handleStats)
	mux.HandleFunc("GET /sim/v1/window", s.handleWindow)
	mux.HandleFunc("POST /sim/v1/window", s.handleWindowAction)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		write(w, errorResponse(apiError("NOT_FOUND")))
	})
	return mux
}

// write sends resp. It is only ever called with no lock held.
func write(w http.ResponseWriter, resp response) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-TossPayments-Trace-Id", traceID())
	w.WriteHeader(resp.status)
	_, _ = w.Write(resp.body)
}

func traceID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// api wraps a /v1 endpoint with, in order: the X-Sim-* fault overrides, reading the body, the
// injected latency, Basic auth, the request counters, an injected error, the
// TossPayments-Test-Code hook, on POST the Idempotency-Key protocol, and for confirms and
// cancels a lost response.
func (s *Simulator) api(kind routeKind, h endpoint) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		faults, err := s.requestFaults(r)
		if err != nil {
			write(w, errorResponse(apiError("INVALID_REQUEST")))
			return
		}
		// The body is read before the latency: only once it is consumed does net/http watch
		// the connection and cancel the request's context when the client goes away.
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
		if err != nil {
			write(w, errorResponse(apiError("INVALID_REQUEST")))
			return
		}
		if !delay(r.Context(), s.rnd.between(faults.latency.Min, faults.latency.Max)) {
			return // the client gave up while the request was "on the wire": nothing ran
		}
		secretKey, authErr := s.authenticate(r)
		if authErr != nil {
			write(w, errorResponse(authErr))
			return
		}
		s.countRequest(kind)
		if resp, ok := s.injectedError(faults.errorRate); ok {
			write(w, resp) // never reached processing: not stored under the idempotency key
			return
		}
		if resp, ok := testCodeAnswer(r, secretKey); ok {
			write(w, resp)
			return
		}
		x := &exchange{r: r, body: body}
		// execute runs the endpoint and says whether its answer is to be lost. Only executed
		// confirms and cancels lose answers: replays and refusals before execution never do.
		execute := func() (response, bool) {
			lost := kind != kindRead && s.rnd.chance(faults.lostRate)
			return h(x), lost
		}
		answer := func(resp response, lost bool) {
			// A store failure is the simulator's own, not an injected fault: it is answered.
			if lost && x.storeErr == nil {
				s.dropConnection(w, resp)
				return
			}
			write(w, resp)
		}
		idemKey := r.Header.Get("Idempotency-Key")
		if r.Method != http.MethodPost || idemKey == "" {
			answer(execute())
			return
		}
		if utf8.RuneCountInString(idemKey) > maxIdempotencyKeyLen {
			write(w, errorResponse(apiError("INVALID_IDEMPOTENCY_KEY")))
			return
		}
		scope := idemScope(idemKey, secretKey, r.Method, r.URL.Path)
		now := s.cfg.Now()
		stored, state := s.idem.begin(scope, now)
		switch state {
		case idemReplay:
			write(w, stored)
			return
		case idemInFlight:
			write(w, errorResponse(apiError("IDEMPOTENT_REQUEST_PROCESSING")))
			return
		case idemOwner:
		}
		x.idem = &idemClaim{scope: scope, firstUse: now}
		finished := false
		defer func() {
			if !finished { // the endpoint panicked: free the key rather than block it forever
				s.idem.abandon(scope)
			}
		}()
		resp, lost := execute()
		if x.storeErr == nil && !x.idem.saved {
			if err := s.saveAnswer(x.idem, resp); err != nil {
				resp = s.storeFailed(x, "stored answer", err)
			}
		}
		if x.storeErr != nil {
			s.idem.abandon(scope) // a 500 of the store is not kept: a retry under the key executes
		} else {
			s.idem.finish(scope, resp) // stored even when lost, as a careful PSP would (DESIGN.md)
		}
		finished = true
		answer(resp, lost)
	})
}

func (s *Simulator) countRequest(kind routeKind) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch kind {
	case kindConfirm:
		s.stats.ConfirmRequests++
	case kindCancel:
		s.stats.CancelRequests++
	case kindRead:
	}
}

// authenticate checks "Authorization: Basic base64(secretKey:)" and returns the secret key.
func (s *Simulator) authenticate(r *http.Request) (string, *Error) {
	scheme, cred, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Basic") {
		return "", apiError("INCORRECT_BASIC_AUTH_FORMAT")
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(cred))
	if err != nil {
		return "", apiError("INCORRECT_BASIC_AUTH_FORMAT")
	}
	key, _, ok := strings.Cut(string(raw), ":")
	if !ok {
		return "", apiError("INCORRECT_BASIC_AUTH_FORMAT")
	}
	if !s.acceptsKey(key) {
		return "", apiError("UNAUTHORIZED_KEY")
	}
	return key, nil
}

func (s *Simulator) acceptsKey(key string) bool {
	if s.keys != nil {
		return s.keys[key]
	}
	for _, prefix := range []string{"test_sk_", "test_gsk_", "test_ak_"} {
		if strings.HasPrefix(key, prefix) && len(key) > len(prefix) {
			return true
		}
	}
	return false
}

var testCodePattern = regexp.MustCompile(`^[A-Z0-9_]{1,100}$`)

// testCodeAnswer implements the TossPayments-Test-Code header (M-headers): with a test key,
// the named error comes back with its §8 status and nothing executes. Live keys ignore it.
func testCodeAnswer(r *http.Request, secretKey string) (response, bool) {
	code := strings.TrimSpace(r.Header.Get("TossPayments-Test-Code"))
	if code == "" || !strings.HasPrefix(secretKey, "test_") {
		return response{}, false
	}
	if !testCodePattern.MatchString(code) {
		return errorResponse(apiError("INVALID_REQUEST")), true
	}
	if _, known := errorTable[code]; known {
		return errorResponse(apiError(code)), true
	}
	return errorResponse(&Error{Status: http.StatusBadRequest, Code: code, Message: "테스트 코드로 발생시킨 오류입니다."}), true
}

func (s *Simulator) handleConfirm(x *exchange) response {
	var req struct {
		PaymentKey string          `json:"paymentKey"`
		OrderID    string          `json:"orderId"`
		Amount     json.RawMessage `json:"amount"`
	}
	if err := json.Unmarshal(x.body, &req); err != nil {
		return s.confirmInvalid(x, "")
	}
	amount, err := parseAmount(req.Amount, false)
	if err != nil || utf8.RuneCountInString(req.PaymentKey) > maxPaymentKeyLen {
		return s.confirmInvalid(x, req.OrderID)
	}
	return s.confirm(x, req.PaymentKey, req.OrderID, amount)
}

// confirmInvalid answers a confirm whose body is unusable; it still executed, so it counts.
func (s *Simulator) confirmInvalid(x *exchange, orderID string) response {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.ConfirmsProcessed++
	return s.finish(x, s.countConfirm(orderID), errorResponse(apiError("INVALID_REQUEST")))
}

func (s *Simulator) handleGetByKey(x *exchange) response {
	return s.lookup(x, s.byKey, x.r.PathValue("paymentKey"))
}

func (s *Simulator) handleGetByOrder(x *exchange) response {
	return s.lookup(x, s.byOrder, x.r.PathValue("orderId"))
}

// lookup answers a payment read. A read can still change state: it may expire the payment,
// which is saved before the answer goes out.
func (s *Simulator) lookup(x *exchange, index map[string]*payment, id string) response {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := index[id]
	if p == nil {
		return errorResponse(apiError("NOT_FOUND_PAYMENT"))
	}
	c := &change{}
	p = s.expireIfDue(c, p, s.cfg.Now())
	return s.finish(x, c, s.paymentResponse(p))
}

func (s *Simulator) handleCancel(x *exchange) response {
	var raw struct {
		CancelReason     *string         `json:"cancelReason"`
		CancelAmount     json.RawMessage `json:"cancelAmount"`
		RefundableAmount json.RawMessage `json:"refundableAmount"`
	}
	invalid := func() response {
		s.mu.Lock()
		s.stats.CancelsProcessed++
		s.mu.Unlock()
		return errorResponse(apiError("INVALID_REQUEST"))
	}
	if err := json.Unmarshal(x.body, &raw); err != nil {
		return invalid()
	}
	if raw.CancelReason == nil || strings.TrimSpace(*raw.CancelReason) == "" ||
		utf8.RuneCountInString(*raw.CancelReason) > maxCancelReasonLen {
		return invalid()
	}
	req := cancelRequest{reason: *raw.CancelReason}
	if !isJSONNull(raw.CancelAmount) {
		a, err := parseAmount(raw.CancelAmount, false)
		if err != nil || !a.IsPositive() {
			return invalid()
		}
		req.amount = &a
	}
	if !isJSONNull(raw.RefundableAmount) {
		a, err := parseAmount(raw.RefundableAmount, false)
		if err != nil || a.IsNegative() {
			return invalid()
		}
		req.refundable = &a
	}
	return s.cancel(x, x.r.PathValue("paymentKey"), req)
}

func isJSONNull(raw json.RawMessage) bool {
	return len(raw) == 0 || string(raw) == "null"
}

// handleCreateSession is POST /sim/v1/sessions. It stands in for the payment window, so it
// takes no auth and is not idempotent.
func (s *Simulator) handleCreateSession(w http.ResponseWriter, r *http.Request) {
	var req struct {
		OrderID             string          `json:"orderId"`
		Amount              json.RawMessage `json:"amount"`
		OrderName           string          `json:"orderName"`
		Method              string          `json:"method"`
		ConfirmError        string          `json:"confirmError"`
		ConfirmErrorTimes   int             `json:"confirmErrorTimes"`
		ConfirmErrorOutcome Status          `json:"confirmErrorOutcome"`
		SettlementFeeRate   json.RawMessage `json:"settlementFeeRate"`
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil || json.Unmarshal(body, &req) != nil {
		write(w, errorResponse(apiError("INVALID_REQUEST")))
		return
	}
	amount, err := parseAmount(req.Amount, true)
	if err != nil {
		write(w, errorResponse(apiError("INVALID_REQUEST")))
		return
	}
	var feeRate *decimal.Decimal
	if !isJSONNull(req.SettlementFeeRate) {
		rate, err := parseRate(req.SettlementFeeRate)
		if err != nil {
			write(w, errorResponse(apiError("INVALID_REQUEST")))
			return
		}
		feeRate = &rate
	}
	key, err := s.CreateSessionWith(SessionRequest{
		OrderID:             req.OrderID,
		Amount:              amount,
		OrderName:           req.OrderName,
		Method:              req.Method,
		ConfirmError:        req.ConfirmError,
		ConfirmErrorTimes:   req.ConfirmErrorTimes,
		ConfirmErrorOutcome: req.ConfirmErrorOutcome,
		SettlementFeeRate:   feeRate,
	})
	if err != nil {
		var e *Error
		if !errors.As(err, &e) {
			e = apiError("COMMON_ERROR")
		}
		write(w, errorResponse(e))
		return
	}
	out, err := marshal(struct {
		PaymentKey string `json:"paymentKey"`
	}{key})
	if err != nil {
		write(w, internalError())
		return
	}
	write(w, response{status: http.StatusCreated, body: out})
}

// handleStats is GET /sim/v1/stats: the Stats counters plus executed confirms per orderId.
func (s *Simulator) handleStats(w http.ResponseWriter, _ *http.Request) {
	st, confirms := s.statsWithConfirms()
	out, err := marshal(struct {
		Stats
		Confirms map[string]int `json:"confirms"`
	}{st, confirms})
	if err != nil {
		write(w, internalError())
		return
	}
	write(w, response{status: http.StatusOK, body: out})
}
