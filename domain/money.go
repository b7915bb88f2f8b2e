package domain

import (
	"regexp"
	"strings"

	"github.com/shopspring/decimal"
)

// Currency is an ISO 4217 code. Only KRW is accepted for now; it has no minor unit.
type Currency string

const KRW Currency = "KRW"

// MaxAmount bounds any single amount (one trillion won). It keeps amounts exact in every JSON
// client (below 2^53) and far above any real card payment.
var MaxAmount = decimal.New(1, 12)

// Scale is the number of decimal places of the currency's minor unit.
func (c Currency) Scale() int32 {
	switch c {
	case KRW:
		return 0
	}
	return 2
}

var plainDecimal = regexp.MustCompile(`^-?[0-9]+(\.[0-9]+)?$`)

// ParseAmount reads a positive amount of currency from its decimal text ("15000"). It refuses
// exponents, signs other than '-', NaN and infinities (by the pattern), zero and negative amounts,
// more decimal places than the currency has (fractional won) and amounts above MaxAmount.
func ParseAmount(s string, c Currency) (decimal.Decimal, error) {
	if !plainDecimal.MatchString(s) {
		return decimal.Decimal{}, Errorf(ErrInvalidAmount, "amount %q is not a plain decimal number", truncate(s, 40))
	}
	d, err := decimal.NewFromString(s)
	if err != nil {
		return decimal.Decimal{}, Errorf(ErrInvalidAmount, "amount %q: %v", truncate(s, 40), err)
	}
	return d, CheckAmount(d, c)
}

// CheckAmount checks the rules of ParseAmount on an already-parsed amount.
func CheckAmount(d decimal.Decimal, c Currency) error {
	if d.Sign() <= 0 {
		return Errorf(ErrInvalidAmount, "amount must be greater than zero, got %s", d)
	}
	if !d.Equal(d.Truncate(c.Scale())) {
		if c.Scale() == 0 {
			return Errorf(ErrInvalidAmount, "%s amounts are whole numbers, got %s", c, d)
		}
		return Errorf(ErrInvalidAmount, "%s amounts have at most %d decimal places, got %s", c, c.Scale(), d)
	}
	if d.GreaterThan(MaxAmount) {
		return Errorf(ErrInvalidAmount, "amount must be at most %s, got %s", MaxAmount, d)
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// FormatWon writes an amount of Korean won as people read it: 25,000원, −5,000원 for a
// negative one. A fraction, which KRW amounts never have, is kept rather than rounded away.
// Every page that shows money uses it (the back office, the demo shop).
func FormatWon(d decimal.Decimal) string {
	s := d.String()
	sign := ""
	if strings.HasPrefix(s, "-") {
		sign, s = "−", s[1:]
	}
	intPart, frac, _ := strings.Cut(s, ".")
	var b strings.Builder
	for i, c := range intPart {
		if i > 0 && (len(intPart)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if frac != "" {
		b.WriteString("." + frac)
	}
	return sign + b.String() + "원"
}

var plainFraction = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?$`)

// ParseFraction reads a rate written as people write one, a plain non-negative decimal such as
// "0.0341": no sign, exponent or spaces, which decimal's own parser would take. The rate's own
// rules (CheckCommissionRate, CheckTossFeeRate) are the caller's.
func ParseFraction(s string) (decimal.Decimal, error) {
	if !plainFraction.MatchString(s) {
		return decimal.Decimal{}, Errorf(ErrInvalidInput, "%q is not a plain decimal fraction such as 0.1", truncate(s, 40))
	}
	return decimal.RequireFromString(s), nil
}
