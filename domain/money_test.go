package domain_test

import (
	"testing"

	"github.com/shopspring/decimal"

	"github.com/paymentledger/ledger/domain"
)

func TestFormatWon(t *testing.T) {
	for in, want := range map[string]string{
		"0": "0원", "999": "999원", "1000": "1,000원", "25000": "25,000원", "1234567": "1,234,567원",
		"-5000": "−5,000원", "1000000000000": "1,000,000,000,000원", "12.5": "12.5원",
	} {
		if got := domain.FormatWon(decimal.RequireFromString(in)); got != want {
			t.Errorf("FormatWon(%s) = %q, want %q", in, got, want)
		}
	}
}

func TestParseFraction(t *testing.T) {
	for _, ok := range []string{"0", "0.1", "0.0341", "1"} {
		if _, err := domain.ParseFraction(ok); err != nil {
			t.Errorf("ParseFraction(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", "-0.1", "+0.1", ".5", "1e-2", "3.41E-2", " 0.1", "0,1", "NaN"} {
		if _, err := domain.ParseFraction(bad); err == nil {
			t.Errorf("ParseFraction(%q) accepted", bad)
		}
	}
}
