package web

import (
	"testing"

	"github.com/shopspring/decimal"

	"github.com/paymentledger/ledger/queries"
)

func TestWonReadsAsPeopleWriteIt(t *testing.T) {
	for in, want := range map[string]string{"0": "0원", "999": "999원", "1000": "1,000원", "25000": "25,000원",
		"1234567": "1,234,567원", "-15000": "−15,000원", "100000.5": "100,000.5원"} {
		if got := won(decimal.RequireFromString(in)); got != want {
			t.Errorf("won(%s) = %q, want %q", in, got, want)
		}
	}
}

func TestLocalPathKeepsSignInOnThisSite(t *testing.T) {
	for in, want := range map[string]string{"/payments?q=a": "/payments?q=a", "//evil.example": "", `/\evil.example`: "",
		"https://evil.example": "", "": "", "/signin": "", "payments": "",
		"/\t/evil.example": "", "/\n/evil.example": "", "/\x00": "", "/\x7f/x": "", "/\xff": "", "/pay\u2028ments": "/pay\u2028ments"} {
		if got := localPath(in); got != want {
			t.Errorf("localPath(%q) = %q, want %q", in, got, want)
		}
	}
}

// The chart's scale is a round number at least the highest bar, and bars keep their
// proportions (computed in decimal, rounded to whole units).
func TestChartLayout(t *testing.T) {
	for in, want := range map[string]string{"0": "10000", "1": "1", "7000": "10000", "25000": "50000", "32000": "50000", "100000": "100000", "120001": "200000"} {
		if got := niceCeiling(decimal.RequireFromString(in)); got.String() != want {
			t.Errorf("niceCeiling(%s) = %s, want %s", in, got, want)
		}
	}
	c := layoutChart([]queries.DailyRow{
		{Day: "2026-12-01", ApprovedAmount: decimal.NewFromInt(50000), CanceledAmount: decimal.NewFromInt(10000)},
		{Day: "2026-12-02", ApprovedAmount: decimal.Zero, CanceledAmount: decimal.Zero},
	})
	if c.Approved[0].H != chartPlot || c.Canceled[0].H != chartPlot/5 || c.Approved[1].H != 0 || c.Approved[0].Y != chartTop {
		t.Fatalf("bars %+v %+v", c.Approved, c.Canceled)
	}
	if len(c.Ticks) != 5 || c.Ticks[4].Label != "50,000원" || c.Ticks[0].Y != c.PlotBottom || len(c.Days) != 2 || c.Days[0].Label != "12-01" {
		t.Fatalf("axis %+v %+v", c.Ticks, c.Days)
	}
}
