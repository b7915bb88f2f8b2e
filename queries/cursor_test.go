package queries

import (
	"encoding/base64"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/paymentledger/ledger/domain"
)

func TestCursorRoundTrips(t *testing.T) {
	for _, fields := range [][]string{
		{"psp_receivable:toss", "1763694000000000", "42"},
		{""},
		{"", "", ""},
		{"a|b", "한글", strings.Repeat("x", 300)},
		{},
	} {
		c := encodeCursorFields(fields...)
		if strings.ContainsAny(c, "+/=") {
			t.Errorf("cursor %q is not unpadded base64url", c)
		}
		got, err := decodeCursorFields(c, len(fields))
		if err != nil || !slices.Equal(got, fields) {
			t.Errorf("%q: decoded %q, %v", fields, got, err)
		}
	}
}

func TestCursorRefusesWhatItDidNotProduce(t *testing.T) {
	good := encodeCursorFields("seller_payable:s1", "1763694000000000", "42")
	raw, _ := base64.RawURLEncoding.DecodeString(good)
	flip := func(i int) string {
		b := slices.Clone(raw)
		b[i] ^= 0x01
		return base64.RawURLEncoding.EncodeToString(b)
	}
	for name, c := range map[string]string{
		"empty":                       "",
		"a bare posting id":           "0",
		"a number":                    "12345",
		"not base64":                  "abc!",
		"short junk":                  "abc",
		"valid base64 of junk":        base64.RawURLEncoding.EncodeToString([]byte("hello, world: not a cursor")),
		"padded base64":               padded(encodeCursorFields("a", "1", "22")),
		"standard base64 alphabet":    strings.NewReplacer("-", "+", "_", "/").Replace(good) + "+/",
		"checksum flipped":            flip(len(raw) - 1),
		"payload flipped":             flip(3),
		"cut short":                   good[:len(good)-2],
		"trailing character":          good + "A",
		"an extra field":              encodeCursorFields("seller_payable:s1", "1763694000000000", "42", "x"),
		"a field missing":             encodeCursorFields("seller_payable:s1", "1763694000000000"),
		"a length beyond the payload": withSum([]byte{cursorVersion, 0x7f, 'a'}),
		"bytes after the last field":  withSum([]byte{cursorVersion, 1, 'a', 1, 'b', 1, 'c', 'z'}),
		"another version":             withSum([]byte{cursorVersion + 1, 1, 'a', 1, 'b', 1, 'c'}),
		"overlong":                    strings.Repeat("A", maxCursorChars+4),
	} {
		t.Run(name, func(t *testing.T) {
			fields, err := decodeCursorFields(c, 3)
			if !errors.Is(err, domain.ErrInvalidInput) || fields != nil {
				t.Fatalf("decoded %q, %v; want INVALID_REQUEST", fields, err)
			}
			if !strings.Contains(err.Error(), "is not one this API returned") {
				t.Fatalf("message %q", err)
			}
		})
	}
}

// padded is cursor c with base64 padding, which the encoder never writes.
func padded(c string) string {
	raw, _ := base64.RawURLEncoding.DecodeString(c)
	p := base64.URLEncoding.EncodeToString(raw)
	if p == c {
		panic("the test cursor needs no padding; pick fields of another length")
	}
	return p
}

// withSum is raw with a correct checksum: only the framing is wrong.
func withSum(payload []byte) string {
	return base64.RawURLEncoding.EncodeToString(append(payload, cursorSum(payload)...))
}

func FuzzCursorDecode(f *testing.F) {
	f.Add(encodeCursorFields("a", "1", "2"), 3)
	f.Add("0", 1)
	f.Fuzz(func(t *testing.T, s string, n int) {
		n = min(max(n, 0), 8)
		fields, err := decodeCursorFields(s, n)
		if err != nil {
			return
		}
		// Whatever decodes is exactly what the encoder makes of its fields.
		if again := encodeCursorFields(fields...); again != s {
			t.Fatalf("%q decoded to %q, which encodes as %q", s, fields, again)
		}
	})
}

// A forged cursor's time must not reach PostgreSQL outside its range (an error there, a 500
// here): only times a row can have decode.
func TestCursorTimeRange(t *testing.T) {
	for field, want := range map[string]bool{
		"1763694000000000":     true,  // 2025-11-21
		"946684800000000":      true,  // 2000-01-01
		"946684799999999":      false, // a microsecond before
		"253402214400000000":   true,  // 9999-12-31
		"253402214400000001":   false,
		"-300000000000000000":  false,
		"9223372036854775807":  false,
		"-9223372036854775808": false,
		"x":                    false,
		"":                     false,
	} {
		if _, ok := cursorTime(field); ok != want {
			t.Errorf("cursorTime(%q) ok = %v, want %v", field, ok, want)
		}
	}
}
