package web

import (
	"crypto/subtle"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/paymentledger/ledger/internal/ratelimit"
	"github.com/paymentledger/ledger/merchants"
)

// signInCookie holds the sign-in form's own CSRF token (double submit: the form's hidden field
// must equal it), since the form comes before any session.
const signInCookie = "pl_signin"

type signInData struct {
	Next    string
	Token   string
	Message string // why the form is shown again
	Notice  string // not an error: signed out
}

// signInForm serves GET /signin.
func (h *Handler) signInForm(w http.ResponseWriter, r *http.Request) {
	d := signInData{Next: localPath(r.URL.Query().Get("next"))}
	switch r.URL.Query().Get("why") {
	case "revoked":
		d.Message = "The API key you signed in with no longer works. Sign in with a current key."
	case "out":
		d.Notice = "You have signed out."
	}
	h.showSignIn(w, r, http.StatusOK, d)
}

func (h *Handler) showSignIn(w http.ResponseWriter, r *http.Request, status int, d signInData) {
	w.Header().Set("Cache-Control", "no-store")
	d.Token = newToken()
	h.setCookie(w, r, signInCookie, d.Token, 0)
	h.render(w, r, status, "signin", page{Title: "Sign in", Data: d})
}

// signIn serves POST /signin: a merchant's API key, checked by merchants.Authenticate, starts a
// session. Failures are limited per client address.
func (h *Handler) signIn(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	limitForm(w, r)
	c, err := r.Cookie(signInCookie)
	if !h.sameOrigin(r) || err != nil || c.Value == "" ||
		subtle.ConstantTimeCompare([]byte(c.Value), []byte(r.PostFormValue("csrf"))) != 1 {
		h.forbidden(w, r, "This sign-in form has expired or was not sent from this site; reload the page and try again.")
		return
	}
	d := signInData{Next: localPath(r.PostFormValue("next"))}
	now := h.cfg.Now()
	addr := clientAddr(r)
	if blocked, wait := h.failures.Exhausted(addr, now); blocked {
		w.Header().Set("Retry-After", ratelimit.RetryAfter(wait))
		d.Message = "Too many failed sign-ins from this address; try again in " + ratelimit.RetryAfter(wait) + " seconds."
		h.showSignIn(w, r, http.StatusTooManyRequests, d)
		return
	}
	p, err := h.cfg.Keys.Authenticate(r.Context(), strings.TrimSpace(r.PostFormValue("apiKey")))
	var ae *merchants.AuthError
	switch {
	case errors.As(err, &ae):
		h.failures.Allow(addr, now)
		h.logger.InfoContext(r.Context(), "web: sign-in refused", "reason", ae.Reason, "clientAddr", addr)
		d.Message = "That API key was not accepted. Check that you pasted the whole key (sk_test_… or sk_live_…) and that it has not been revoked."
		h.showSignIn(w, r, http.StatusUnauthorized, d)
		return
	case err != nil:
		h.logger.ErrorContext(r.Context(), "web: sign-in could not check the key", "error", err)
		d.Message = "The key could not be checked just now; try again."
		h.showSignIn(w, r, http.StatusServiceUnavailable, d)
		return
	}
	// A session token from before sign-in is never reused (session fixation).
	if old, err := r.Cookie(sessionCookie); err == nil && old.Value != "" {
		if err := h.sessions.end(r.Context(), old.Value); err != nil {
			h.failed(w, r, err)
			return
		}
	}
	s, err := h.sessions.create(r.Context(), p, now)
	if err != nil {
		h.failed(w, r, err)
		return
	}
	h.logger.InfoContext(r.Context(), "web: signed in", "merchantId", p.Merchant, "keyId", p.KeyID, "clientAddr", addr)
	h.setCookie(w, r, sessionCookie, s.token, h.cfg.MaxAge)
	h.setCookie(w, r, signInCookie, "", -1)
	next := d.Next
	if next == "" {
		next = "/payments"
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// signOut serves POST /signout.
func (h *Handler) signOut(w http.ResponseWriter, r *http.Request) {
	if err := h.sessions.end(r.Context(), sessionOf(r).token); err != nil {
		h.failed(w, r, err)
		return
	}
	h.setCookie(w, r, sessionCookie, "", -1)
	http.Redirect(w, r, "/signin?why=out", http.StatusSeeOther)
}

// localPath returns p when it is a path on this server, else "": a sign-in never redirects to
// another site. Browsers drop tabs and other control characters from a Location ("/\t/x" is
// "//x", another host), so any control character or invalid UTF-8 refuses p, and what is left
// must parse as a path with no scheme or host.
func localPath(p string) string {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.HasPrefix(p, `/\`) ||
		strings.ContainsAny(p, "\\") || !utf8.ValidString(p) || strings.ContainsFunc(p, unicode.IsControl) ||
		strings.HasPrefix(p, "/signin") || strings.HasPrefix(p, "/signout") {
		return ""
	}
	if u, err := url.Parse(p); err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return ""
	}
	return p
}

// clientAddr is the TCP peer's address; forwarding headers are not trusted (as the API).
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
