package queries

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"strconv"
	"time"

	"github.com/paymentledger/ledger/domain"
)

// Pagination cursors. A cursor is opaque to clients: the few fields a query needs to resume
// (the keyset of the last row shown) framed as a version byte and length-prefixed fields, then
// a checksum, all in unpadded base64url. The decoder accepts only what the encoder produced,
// so a cursor a client made up, cut short or edited is a 400, never a silent first page or a
// page from somewhere else.
//
// The checksum catches garbage and edits, not forgery: it is unkeyed, so cursors stay valid
// across restarts and instances. That is enough because a cursor only says where a page
// starts; every query is scoped to its merchant whatever the cursor holds.

const (
	cursorVersion  = 1
	cursorSumLen   = 6    // bytes of SHA-256 kept: 2^-48 odds that junk passes
	maxCursorChars = 1024 // far above any cursor the queries make; bounds the work on junk
)

var cursorEncoding = base64.RawURLEncoding.Strict()

// cursorSum is the checksum of a cursor's payload, bound to this codec so that other base64
// tokens of the system never decode as cursors.
func cursorSum(payload []byte) []byte {
	h := sha256.New()
	h.Write([]byte("paymentledger/queries cursor\x00"))
	h.Write(payload)
	return h.Sum(nil)[:cursorSumLen]
}

// encodeCursorFields returns the cursor holding fields, in order.
func encodeCursorFields(fields ...string) string {
	payload := []byte{cursorVersion}
	for _, f := range fields {
		payload = binary.AppendUvarint(payload, uint64(len(f)))
		payload = append(payload, f...)
	}
	return cursorEncoding.EncodeToString(append(payload, cursorSum(payload)...))
}

// decodeCursorFields returns the n fields of a cursor made by encodeCursorFields. Anything else
// (bad base64, a wrong checksum, another version, fewer or more fields, bytes after the last
// field, the empty string) is domain.ErrInvalidInput.
func decodeCursorFields(s string, n int) ([]string, error) {
	bad := domain.Errorf(domain.ErrInvalidInput, "cursor %q is not one this API returned", clip(s, 40))
	if s == "" || len(s) > maxCursorChars {
		return nil, bad
	}
	raw, err := cursorEncoding.DecodeString(s)
	if err != nil || len(raw) < 1+cursorSumLen {
		return nil, bad
	}
	payload, sum := raw[:len(raw)-cursorSumLen], raw[len(raw)-cursorSumLen:]
	if !bytes.Equal(sum, cursorSum(payload)) || payload[0] != cursorVersion {
		return nil, bad
	}
	rest := payload[1:]
	fields := make([]string, 0, n)
	for range n {
		size, k := binary.Uvarint(rest)
		if k <= 0 || size > uint64(len(rest)-k) {
			return nil, bad
		}
		fields = append(fields, string(rest[k:k+int(size)]))
		rest = rest[k+int(size):]
	}
	if len(rest) != 0 {
		return nil, bad
	}
	return fields, nil
}

// clip shortens s for an error message.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// Cursor times are the microseconds of a row's time. A forged cursor may hold any integer, and
// PostgreSQL refuses a timestamp outside its range with an error: only times a row of this
// system can have are accepted.
var (
	minCursorTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	maxCursorTime = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)
)

// cursorTime reads a cursor's time field; ok is false for anything encodeCursorFields was not
// given by a query.
func cursorTime(field string) (t time.Time, ok bool) {
	micros, err := strconv.ParseInt(field, 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	t = time.UnixMicro(micros).UTC()
	return t, !t.Before(minCursorTime) && !t.After(maxCursorTime)
}
