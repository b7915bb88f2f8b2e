package httpapi

import (
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/paymentledger/ledger/domain"
)

// CheckRequestText refuses a request whose path or query holds text no handler could store or
// answer about: invalid UTF-8, NUL or other control characters. PostgreSQL cannot hold NUL in
// text, and a handler that passed such a value on would turn bad input into a 500. The API runs
// it on every request, and so does the back office.
func CheckRequestText(r *http.Request) error {
	if err := checkText("the path", r.URL.Path); err != nil {
		return err
	}
	if r.URL.RawQuery == "" {
		return nil
	}
	values, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return badRequest("INVALID_REQUEST", "the query string is malformed")
	}
	for k, vs := range values {
		if err := checkText("a query parameter name", k); err != nil {
			return err
		}
		for _, v := range vs {
			if err := checkText("query parameter "+truncate(k, 40), v); err != nil {
				return err
			}
		}
	}
	return nil
}

func checkText(what, s string) error {
	if !utf8.ValidString(s) {
		return badRequest("INVALID_REQUEST", "%s is not valid UTF-8", what)
	}
	if strings.ContainsFunc(s, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		return badRequest("INVALID_REQUEST", "%s holds a control character", what)
	}
	return nil
}

// checkJSONText refuses a JSON body whose strings cannot be kept exactly: bytes that are not
// UTF-8 and unpaired surrogate escapes (encoding/json would silently replace both with U+FFFD,
// so the stored text would differ from what was sent), and \u0000, which no field may hold.
func checkJSONText(body []byte) error {
	if !utf8.Valid(body) {
		return badRequest("INVALID_UTF8", "the request body is not valid UTF-8")
	}
	inString := false
	for i := 0; i < len(body); i++ {
		c := body[i]
		switch {
		case !inString:
			inString = c == '"'
		case c == '"':
			inString = false
		case c == '\\' && i+1 < len(body):
			i++
			if body[i] != 'u' {
				continue
			}
			r, ok := hex4(body, i+1)
			if !ok {
				continue // the decoder reports malformed escapes
			}
			i += 4
			switch {
			case r == 0:
				return badRequest("INVALID_REQUEST", "strings must not contain NUL (\\u0000)")
			case r >= 0xDC00 && r <= 0xDFFF:
				return badRequest("INVALID_UTF8", "a string holds an unpaired surrogate escape")
			case r >= 0xD800 && r <= 0xDBFF:
				lo, ok := -1, i+2 < len(body) && body[i+1] == '\\' && body[i+2] == 'u'
				if ok {
					var v rune
					v, ok = hex4(body, i+3)
					lo = int(v)
				}
				if !ok || lo < 0xDC00 || lo > 0xDFFF {
					return badRequest("INVALID_UTF8", "a string holds an unpaired surrogate escape")
				}
				i += 6
			}
		}
	}
	return nil
}

// hex4 reads the four hex digits at b[i:i+4].
func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c-'a') + 10
		case c >= 'A' && c <= 'F':
			r |= rune(c-'A') + 10
		default:
			return 0, false
		}
	}
	return r, true
}

// noteOrder makes the request's log lines name the order it acts on.
func noteOrder(r *http.Request, id domain.OrderID) {
	if f := fieldsOf(r.Context()); f != nil {
		f.orderID = domain.OrderID(truncate(string(id), 64))
	}
}
