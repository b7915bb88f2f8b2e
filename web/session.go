package web

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/merchants"
)

// sessionCookie holds the session token. Without the __Host- prefix: that prefix needs Secure,
// and the back office also runs on plain http on a developer's machine.
const sessionCookie = "pl_session"

// tokenBytes is the size of session and sign-in tokens: 256 random bits.
const tokenBytes = 32

// session is one signed-in browser: what web_sessions holds, plus the token from its cookie
// (never stored) from which its CSRF token is derived.
type session struct {
	token    string
	Merchant domain.MerchantID
	KeyID    domain.APIKeyID
	Scopes   []domain.Scope // the key's, as merchants.CheckKey says at each request
}

// Can reports whether the session's key carries scope (templates show only what it allows).
func (s *session) Can(scope string) bool { return slices.Contains(s.Scopes, domain.Scope(scope)) }

// CSRF is the session's CSRF token.
func (s *session) CSRF() string { return csrfToken(s.token) }

// sessionStore keeps sessions in web_sessions, by the SHA-256 of their tokens.
type sessionStore struct {
	pool   *pgxpool.Pool
	idle   time.Duration
	maxAge time.Duration
}

func newToken() string {
	b := make([]byte, tokenBytes)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

func tokenHash(token string) []byte {
	sum := sha256.Sum256([]byte(token))
	return sum[:]
}

// create starts a session for p at now and returns it with its token. Sessions that have ended
// are swept on the way: sign-ins are rare enough to carry that work.
func (st *sessionStore) create(ctx context.Context, p merchants.Principal, now time.Time) (*session, error) {
	s := &session{token: newToken(), Merchant: p.Merchant, KeyID: p.KeyID, Scopes: p.Scopes}
	scopes := make([]string, len(p.Scopes))
	for i, sc := range p.Scopes {
		scopes[i] = string(sc)
	}
	if _, err := st.pool.Exec(ctx, `DELETE FROM web_sessions WHERE expires_at <= $1 OR last_seen_at <= $2`, now, now.Add(-st.idle)); err != nil {
		return nil, fmt.Errorf("web: sweep sessions: %w", err)
	}
	_, err := st.pool.Exec(ctx, `
		INSERT INTO web_sessions (token_hash, merchant_id, key_id, scopes, created_at, last_seen_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $5, $6)`, tokenHash(s.token), p.Merchant, p.KeyID, scopes, now, now.Add(st.maxAge))
	if err != nil {
		return nil, fmt.Errorf("web: create session: %w", err)
	}
	return s, nil
}

// touch finds the live session of token at now and records the request (the idle clock starts
// again). A token of no session, or of one that has ended, is (nil, nil). The request is
// recorded at most once a minute, so a page view is a read, not a write: the idle clock is that
// much coarser. The session's scopes are the key's, which the caller takes from CheckKey.
func (st *sessionStore) touch(ctx context.Context, token string, now time.Time) (*session, error) {
	s := &session{token: token}
	var lastSeen time.Time
	err := st.pool.QueryRow(ctx, `
		SELECT merchant_id, key_id, last_seen_at FROM web_sessions
		WHERE token_hash = $1 AND expires_at > $2 AND last_seen_at > $3`, tokenHash(token), now, now.Add(-st.idle)).
		Scan(&s.Merchant, &s.KeyID, &lastSeen)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("web: read session: %w", err)
	}
	if now.Sub(lastSeen) >= touchEvery {
		if _, err := st.pool.Exec(ctx, `UPDATE web_sessions SET last_seen_at = $2 WHERE token_hash = $1`, tokenHash(token), now); err != nil {
			return nil, fmt.Errorf("web: touch session: %w", err)
		}
	}
	return s, nil
}

// touchEvery is how often a session's last request is written down.
const touchEvery = time.Minute

// end deletes the session of token.
func (st *sessionStore) end(ctx context.Context, token string) error {
	if _, err := st.pool.Exec(ctx, `DELETE FROM web_sessions WHERE token_hash = $1`, tokenHash(token)); err != nil {
		return fmt.Errorf("web: end session: %w", err)
	}
	return nil
}

// endKey deletes every session of a key (it no longer works).
func (st *sessionStore) endKey(ctx context.Context, merchant domain.MerchantID, kid domain.APIKeyID) error {
	if _, err := st.pool.Exec(ctx, `DELETE FROM web_sessions WHERE merchant_id = $1 AND key_id = $2`, merchant, kid); err != nil {
		return fmt.Errorf("web: end sessions of a key: %w", err)
	}
	return nil
}

// overTLS reports whether the browser reached us over TLS: the connection's, or the trusted
// proxy's X-Forwarded-Proto.
func (h *Handler) overTLS(r *http.Request) bool {
	return r.TLS != nil || h.cfg.TrustForwardedProto && r.Header.Get("X-Forwarded-Proto") == "https"
}

// setCookie sets a cookie the page's scripts cannot read and other sites never send.
func (h *Handler) setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge time.Duration) {
	c := &http.Cookie{Name: name, Value: value, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: h.overTLS(r), MaxAge: int(maxAge / time.Second)}
	if maxAge < 0 {
		c.MaxAge = -1
	}
	http.SetCookie(w, c)
}

type sessionKey struct{}

func sessionOf(r *http.Request) *session {
	s, _ := r.Context().Value(sessionKey{}).(*session)
	return s
}

// signedIn runs next for a signed-in session whose key still works and carries scope (any
// when empty). A POST must also pass the CSRF checks. Without a session a GET goes to the
// sign-in page and a POST is 403.
func (h *Handler) signedIn(scope domain.Scope, next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		post := r.Method == http.MethodPost
		if post && !h.sameOrigin(r) {
			h.forbidden(w, r, "This form was not sent from this site.")
			return
		}
		if post {
			limitForm(w, r)
		}
		var token string
		if c, err := r.Cookie(sessionCookie); err == nil {
			token = c.Value
		}
		// The token is checked before the session is even read: a forged POST touches nothing.
		if post && (token == "" || !validCSRF(token, r.PostFormValue("csrf"))) {
			h.forbidden(w, r, "This form has expired or was not sent from this site; reload the page and try again.")
			return
		}
		var s *session
		if token != "" {
			var err error
			if s, err = h.sessions.touch(r.Context(), token, h.cfg.Now()); err != nil {
				h.failed(w, r, err)
				return
			}
		}
		if s == nil {
			if post {
				h.setCookie(w, r, sessionCookie, "", -1)
				h.forbidden(w, r, "Your session has ended; sign in again.")
				return
			}
			h.toSignIn(w, r, "")
			return
		}
		p, err := h.cfg.Keys.CheckKey(r.Context(), s.Merchant, s.KeyID)
		var ae *merchants.AuthError
		switch {
		case errors.As(err, &ae):
			h.logger.InfoContext(r.Context(), "web: session of a key that no longer works ended", "merchantId", s.Merchant,
				"keyId", s.KeyID, "reason", ae.Reason)
			if err := h.sessions.endKey(r.Context(), s.Merchant, s.KeyID); err != nil {
				h.failed(w, r, err)
				return
			}
			h.setCookie(w, r, sessionCookie, "", -1)
			if post {
				h.forbidden(w, r, "The API key of this session no longer works; sign in with another.")
				return
			}
			h.toSignIn(w, r, "revoked")
			return
		case err != nil:
			h.logger.ErrorContext(r.Context(), "web: key check failed", "merchantId", s.Merchant, "error", err)
			h.renderError(w, r, http.StatusServiceUnavailable, "Unavailable", "Your API key could not be checked just now; try again.")
			return
		}
		s.Scopes = p.Scopes // the key's, now
		if scope != "" && !slices.Contains(s.Scopes, scope) {
			h.renderError(w, r.WithContext(context.WithValue(r.Context(), sessionKey{}, s)), http.StatusForbidden,
				"Not allowed", "The API key you signed in with lacks the scope "+string(scope)+".")
			return
		}
		next(w, r.WithContext(context.WithValue(r.Context(), sessionKey{}, s)))
	})
}

// toSignIn redirects a GET to the sign-in page, to come back to it afterwards.
func (h *Handler) toSignIn(w http.ResponseWriter, r *http.Request, why string) {
	q := "next=" + url.QueryEscape(r.URL.RequestURI())
	if why != "" {
		q += "&why=" + why
	}
	http.Redirect(w, r, "/signin?"+q, http.StatusSeeOther)
}

func (h *Handler) forbidden(w http.ResponseWriter, r *http.Request, msg string) {
	h.renderError(w, r, http.StatusForbidden, "Forbidden", msg)
}
