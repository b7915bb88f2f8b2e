package web

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"net/url"
)

// maxFormBytes bounds a POST's form: the largest, the refund form, is a few hundred bytes.
const maxFormBytes = 64 << 10

// csrfToken is the CSRF token of the session with token: an HMAC of a fixed label keyed by the
// session token. Only the browser holding the cookie (and pages rendered for it) can know it,
// nothing more has to be stored, and the token does not reveal the session token.
func csrfToken(sessionToken string) string {
	m := hmac.New(sha256.New, []byte(sessionToken))
	m.Write([]byte("paymentledger/web csrf v1"))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// validCSRF compares a form's token with the session's in constant time.
func validCSRF(sessionToken, got string) bool {
	want := csrfToken(sessionToken)
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// sameOrigin reports whether a POST comes from a page of this server: its Origin header, or
// without one its Referer, must name this scheme and host. A request with neither is refused:
// every browser that can submit the back office's forms sends one of them.
func (h *Handler) sameOrigin(r *http.Request) bool {
	scheme := "http"
	if h.overTLS(r) {
		scheme = "https"
	}
	from := r.Header.Get("Origin")
	if from == "" || from == "null" {
		from = r.Header.Get("Referer")
	}
	u, err := url.Parse(from)
	return err == nil && from != "" && u.Scheme == scheme && u.Host == r.Host && u.User == nil
}

// limitForm bounds the body a POST's form is parsed from.
func limitForm(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
}
