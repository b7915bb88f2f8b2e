package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/shopspring/decimal"

	"github.com/paymentledger/ledger/domain"
)

// MaxBodyBytes bounds every request body.
const MaxBodyBytes = 1 << 20

// apiError is an error answered to the client: status, stable code, message.
type apiError struct {
	Status  int
	Code    string
	Message string
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

func badRequest(code, format string, args ...any) *apiError {
	return &apiError{Status: http.StatusBadRequest, Code: code, Message: fmt.Sprintf(format, args...)}
}

// StatusOf is the HTTP status of a domain error kind: the one table every package that answers
// HTTP uses (the API here, the back office's pages).
func StatusOf(k domain.Kind) int { return statusOf[k] }

// statusOf is the one table from domain error kinds to HTTP status codes.
var statusOf = map[domain.Kind]int{
	domain.KindInvalid:     http.StatusBadRequest,
	domain.KindNotFound:    http.StatusNotFound,
	domain.KindConflict:    http.StatusConflict,
	domain.KindUnavailable: http.StatusServiceUnavailable,
	domain.KindInternal:    http.StatusInternalServerError,
}

// writeError answers err as {"error":{"code","message"}}. Internal errors are logged with their
// details and answered with a generic message.
func writeError(w http.ResponseWriter, r *http.Request, logger *slog.Logger, err error) {
	var ae *apiError
	var de *domain.Error
	switch {
	case errors.As(err, &ae):
	case errors.As(err, &de) && de.Kind != domain.KindInternal:
		ae = &apiError{Status: statusOf[de.Kind], Code: de.Code, Message: de.Message}
	default:
		attrs := append([]any{"method", r.Method, "path", truncate(r.URL.Path, 200), "error", err}, fieldsOf(r.Context()).attrs()...)
		logger.ErrorContext(r.Context(), "internal error", attrs...)
		ae = &apiError{Status: http.StatusInternalServerError, Code: "INTERNAL", Message: "internal error; it has been logged"}
	}
	writeJSON(w, ae.Status, map[string]any{"error": map[string]string{"code": ae.Code, "message": ae.Message}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v) // the client hung up, nothing to do
}

// decodeJSON reads exactly one JSON object into dst: at most MaxBodyBytes, no unknown fields,
// no trailing data, types as declared. Every failure is a 4xx *apiError.
func decodeJSON(w http.ResponseWriter, r *http.Request, dst any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return &apiError{Status: http.StatusUnsupportedMediaType, Code: "UNSUPPORTED_MEDIA_TYPE",
				Message: "Content-Type must be application/json"}
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return &apiError{Status: http.StatusRequestEntityTooLarge, Code: "BODY_TOO_LARGE",
			Message: fmt.Sprintf("request body must be at most %d bytes", MaxBodyBytes)}
	}
	if err != nil {
		return badRequest("INVALID_REQUEST", "reading the request body: %v", err)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return badRequest("INVALID_REQUEST", "request body is empty; send a JSON object")
	}
	if err := checkJSONText(body); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return describeDecodeError(err)
	}
	if dec.More() {
		return badRequest("INVALID_REQUEST", "request body must hold exactly one JSON object")
	}
	return nil
}

func describeDecodeError(err error) *apiError {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var amt *amountError
	switch {
	case errors.As(err, &amt):
		return badRequest(domain.ErrInvalidAmount.Code, "%s", amt.msg)
	case errors.As(err, &syntax):
		return badRequest("MALFORMED_JSON", "malformed JSON at byte %d: %v", syntax.Offset, syntax)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("MALFORMED_JSON", "malformed JSON: unexpected end of input")
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			return badRequest("INVALID_REQUEST", "request body must be a JSON object")
		}
		return badRequest("INVALID_REQUEST", "field %q must be of type %s, got JSON %s", field, jsonType(typ.Type.Kind().String()), typ.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return badRequest("UNKNOWN_FIELD", "unknown field %s", strings.TrimPrefix(err.Error(), "json: unknown field "))
	}
	return badRequest("MALFORMED_JSON", "malformed JSON: %v", err)
}

func jsonType(goKind string) string {
	switch goKind {
	case "string":
		return "string"
	case "slice":
		return "array"
	case "struct", "map":
		return "object"
	case "int", "int64", "float64":
		return "number"
	case "bool":
		return "boolean"
	}
	return goKind
}

// amount is a money amount in a request: a decimal string ("15000") or a JSON integer (15000).
// Its text is validated by domain.ParseAmount after decoding.
type amount struct {
	text string
	set  bool
}

type amountError struct{ msg string }

func (e *amountError) Error() string { return e.msg }

// UnmarshalJSON implements json.Unmarshaler.
func (a *amount) UnmarshalJSON(b []byte) error {
	switch {
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		a.text, a.set = s, true
	case len(b) > 0 && (b[0] == '-' || b[0] >= '0' && b[0] <= '9'):
		a.text, a.set = string(b), true
	default:
		return &amountError{msg: fmt.Sprintf("amount must be a decimal string or a JSON integer, got %s", truncate(string(b), 40))}
	}
	return nil
}

// parse validates the amount for currency; field names it in messages.
func (a amount) parse(field string, c domain.Currency) (decimal.Decimal, error) {
	if !a.set {
		return decimal.Decimal{}, badRequest("INVALID_REQUEST", "%s is required", field)
	}
	d, err := domain.ParseAmount(a.text, c)
	if err != nil {
		var de *domain.Error
		errors.As(err, &de)
		return decimal.Decimal{}, badRequest(de.Code, "%s: %s", field, de.Message)
	}
	return d, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// pageParams reads a list's cursor and limit query parameters. An empty cursor is refused: the
// queries would read it as "first page", and the API never returns one, so a client sending
// cursor= has lost its cursor and must not silently start over. A limit is a positive integer
// (0: the query's default); the query checks its upper bound.
func pageParams(params url.Values) (cursor string, limit int, err error) {
	cursor = params.Get("cursor")
	if params.Has("cursor") && cursor == "" {
		return "", 0, badRequest("INVALID_REQUEST", `cursor "" is not one this API returned; leave cursor out for the first page`)
	}
	if l := params.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 {
			return "", 0, badRequest("INVALID_REQUEST", "limit must be a positive integer, got %q", truncate(l, 20))
		}
		limit = n
	}
	return cursor, limit, nil
}
