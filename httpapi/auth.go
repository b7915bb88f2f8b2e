package httpapi

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/internal/ratelimit"
	"github.com/paymentledger/ledger/merchants"
)

// Authenticator checks API keys. *merchants.Service is the implementation: a failure is a
// *merchants.AuthError; any other error means it could not tell (the database is down).
type Authenticator interface {
	Authenticate(ctx context.Context, apiKey string) (merchants.Principal, error)
}

var _ Authenticator = (*merchants.Service)(nil)

// AuthConfig says how requests are authenticated and limited.
type AuthConfig struct {
	// Keys checks the API keys of /api/v1. Required: without it every /api/v1 request is 401.
	Keys Authenticator
	// AdminToken guards /admin/v1 (Authorization: Bearer <token>). Empty: the admin API is off.
	AdminToken string
	// KeyRate and KeyBurst limit the requests of one API key (per second; default 50 and 100).
	KeyRate  float64
	KeyBurst int
	// FailuresPerMinute is how many failed authentications one client address may make per
	// minute (with as many in a burst) before it gets 429 (default 10).
	FailuresPerMinute int
	// OnFailure and OnRateLimited, if set, count auth failures by reason and refusals by
	// limiter (metrics).
	OnFailure     func(reason string)
	OnRateLimited func(limiter string)
	// Now is the clock of the limiters. Default time.Now.
	Now func() time.Time
}

type authConfig struct {
	AuthConfig
	keyLimits  *ratelimit.Keyed
	failLimits *ratelimit.Keyed
	adminHash  [32]byte
}

func newAuthConfig(c AuthConfig) authConfig {
	if c.KeyRate <= 0 {
		c.KeyRate = 50
	}
	if c.KeyBurst <= 0 {
		c.KeyBurst = 100
	}
	if c.FailuresPerMinute <= 0 {
		c.FailuresPerMinute = 10
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.OnFailure == nil {
		c.OnFailure = func(string) {}
	}
	if c.OnRateLimited == nil {
		c.OnRateLimited = func(string) {}
	}
	return authConfig{
		AuthConfig: c,
		keyLimits:  ratelimit.New(c.KeyRate, c.KeyBurst, 0),
		failLimits: ratelimit.New(float64(c.FailuresPerMinute)/60, c.FailuresPerMinute, 0),
		adminHash:  sha256.Sum256([]byte(c.AdminToken)),
	}
}

// Auth failure reasons of our own (the merchants package names the others).
const (
	reasonMissing        = "missing"
	reasonForbiddenScope = "forbidden_scope"
	reasonAdminToken     = "admin_token"
)

var errUnauthorized = &apiError{Status: http.StatusUnauthorized, Code: "UNAUTHORIZED",
	Message: "a valid API key is required: HTTP Basic with the key as user name and an empty password, or Authorization: Bearer <key>"}

// requireKey authenticates the request's API key, limits its rate and checks that it carries
// scope, then runs next with the key's Principal.
func (s *Server) requireKey(scope domain.Scope, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a := &s.auth
		now := a.Now()
		addr := clientAddr(r)
		if blocked, wait := a.failLimits.Exhausted(addr, now); blocked {
			s.rateLimited(w, r, "auth_failures", wait, "too many failed authentications from this address")
			return
		}
		key := credentials(r)
		if key == "" {
			s.authFailed(w, r, addr, reasonMissing)
			return
		}
		if a.Keys == nil {
			s.authFailed(w, r, addr, merchants.ReasonUnknownKey)
			return
		}
		p, err := a.Keys.Authenticate(r.Context(), key)
		var ae *merchants.AuthError
		switch {
		case errors.As(err, &ae):
			s.authFailed(w, r, addr, ae.Reason)
			return
		case err != nil:
			writeError(w, r, s.logger, &apiError{Status: http.StatusServiceUnavailable, Code: "UNAVAILABLE",
				Message: "the API key could not be checked; try again"})
			s.logger.ErrorContext(r.Context(), "authentication failed", "error", err)
			return
		}
		if ok, wait := a.keyLimits.Allow(string(p.KeyID), now); !ok {
			s.rateLimited(w, r, "api_key", wait, "too many requests with this API key")
			return
		}
		if !slices.Contains(p.Scopes, scope) {
			a.OnFailure(reasonForbiddenScope)
			writeError(w, r, s.logger, &apiError{Status: http.StatusForbidden, Code: "FORBIDDEN",
				Message: "this API key lacks the scope " + string(scope)})
			return
		}
		ctx := withPrincipal(r.Context(), Principal{Merchant: p.Merchant, KeyID: p.KeyID})
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// requireAdmin checks the admin token in constant time.
func (s *Server) requireAdmin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a := &s.auth
		addr := clientAddr(r)
		if blocked, wait := a.failLimits.Exhausted(addr, a.Now()); blocked {
			s.rateLimited(w, r, "auth_failures", wait, "too many failed authentications from this address")
			return
		}
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		got := sha256.Sum256([]byte(strings.TrimSpace(token)))
		if a.AdminToken == "" || !ok || subtle.ConstantTimeCompare(got[:], a.adminHash[:]) != 1 {
			a.failLimits.Allow(addr, a.Now())
			a.OnFailure(reasonAdminToken)
			writeError(w, r, s.logger, &apiError{Status: http.StatusUnauthorized, Code: "UNAUTHORIZED",
				Message: "the admin API needs Authorization: Bearer <ADMIN_TOKEN>"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) authFailed(w http.ResponseWriter, r *http.Request, addr, reason string) {
	s.auth.failLimits.Allow(addr, s.auth.Now())
	s.auth.OnFailure(reason)
	s.logger.InfoContext(r.Context(), "authentication refused", "reason", reason, "clientAddr", addr)
	w.Header().Set("WWW-Authenticate", `Basic realm="paymentledger", charset="UTF-8"`)
	writeError(w, r, s.logger, errUnauthorized)
}

func (s *Server) rateLimited(w http.ResponseWriter, r *http.Request, limiter string, wait time.Duration, msg string) {
	s.auth.OnRateLimited(limiter)
	w.Header().Set("Retry-After", ratelimit.RetryAfter(wait))
	writeError(w, r, s.logger, &apiError{Status: http.StatusTooManyRequests, Code: "RATE_LIMITED",
		Message: msg + "; retry after " + ratelimit.RetryAfter(wait) + " s"})
}

// credentials returns the API key of a request: the user name of HTTP Basic (as Toss takes its
// own keys; the password is ignored) or a Bearer token. "" when there is none.
func credentials(r *http.Request) string {
	h := r.Header.Get("Authorization")
	scheme, value, _ := strings.Cut(h, " ")
	switch {
	case strings.EqualFold(scheme, "Bearer"):
		return strings.TrimSpace(value)
	case strings.EqualFold(scheme, "Basic"):
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(value))
		if err != nil {
			return ""
		}
		user, _, _ := strings.Cut(string(raw), ":")
		return user
	}
	return ""
}

// clientAddr is the TCP peer's address. Forwarding headers are not trusted: a proxy in front
// would make every client one address, so limit at the proxy too.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
