package domain_test

import (
	"testing"
	"time"

	"github.com/paymentledger/ledger/domain"
)

func TestNextKST(t *testing.T) {
	for _, c := range []struct {
		now          string
		hour, minute int
		want         string
	}{
		{"2026-11-21T05:59:59+09:00", 6, 0, "2026-11-21T06:00:00+09:00"},
		{"2026-11-21T06:00:00+09:00", 6, 0, "2026-11-22T06:00:00+09:00"},
		{"2026-11-21T22:30:00Z", 6, 0, "2026-11-23T06:00:00+09:00"}, // 07:30 KST on the 22nd
		{"2026-11-20T20:00:00Z", 6, 0, "2026-11-21T06:00:00+09:00"}, // 05:00 KST on the 21st
		{"2026-11-21T06:59:59+09:00", 7, 0, "2026-11-21T07:00:00+09:00"},
		{"2026-11-21T07:00:00+09:00", 7, 0, "2026-11-22T07:00:00+09:00"},
		{"2026-11-21T22:30:00Z", 7, 0, "2026-11-23T07:00:00+09:00"}, // 07:30 KST on the 22nd
		{"2026-11-21T07:29:00+09:00", 7, 30, "2026-11-21T07:30:00+09:00"},
	} {
		now, _ := time.Parse(time.RFC3339, c.now)
		want, _ := time.Parse(time.RFC3339, c.want)
		if got := domain.NextKST(now, c.hour, c.minute); !got.Equal(want) {
			t.Errorf("NextKST(%s, %02d:%02d) = %s, want %s", c.now, c.hour, c.minute, got, want)
		}
	}
}
