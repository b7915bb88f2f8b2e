package queries

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"

	"github.com/paymentledger/ledger/domain"
)

// DailyRow is one KST calendar day of a merchant's payments, as its books show them.
//
// The figures come from the ledger's journal entries (through their daily rollup), not from
// payment_orders: an approval or
// cancel counts on the day it happened at Toss (the entry's time), however it was learned (our
// confirm, recovery's PaymentApprovedAtPSP, a cancel made in Toss's console), and a payment
// approved on one day and canceled on another counts on both days.
//
// PSPFees are Toss's fees (VAT included) of the settlement rows whose soldDate is the day: the
// fees of the day's transactions, by the day Toss sold them, as the ledger books a settlement
// (at the end of its soldDate). A cancel's settlement row carries a negative fee (Toss gives
// the fee back), so a day's fees can go down when it holds cancels. A day whose transactions
// Toss has not settled yet shows 0 fees until the settlement import records them.
type DailyRow struct {
	Day            string          `json:"day"` // 2026-12-01, a KST calendar day
	ApprovedCount  int             `json:"approvedCount"`
	ApprovedAmount decimal.Decimal `json:"approvedAmount"`
	CanceledCount  int             `json:"canceledCount"` // cancels, partial ones included, not payments
	CanceledAmount decimal.Decimal `json:"canceledAmount"`
	NetAmount      decimal.Decimal `json:"netAmount"` // approved − canceled
	PSPFees        decimal.Decimal `json:"pspFees"`
}

// MaxReportDays bounds a daily report's range.
const MaxReportDays = 366

// DailyReport returns one row per KST day from `from` to `to`, both included, every day
// present (zeros for a day without payments), oldest first. from and to are KST calendar days:
// midnight in KST (ParseKSTDate reads them from 2026-12-01). A range that is empty, reversed,
// longer than MaxReportDays, or that does not start and end at midnight KST is invalid input.
// Amounts are in KRW, the merchants' one currency.
func (s *Service) DailyReport(ctx context.Context, merchant domain.MerchantID, from, to time.Time) ([]DailyRow, error) {
	if merchant == "" {
		return nil, errNoMerchant("daily report")
	}
	days, err := reportDays(from, to)
	if err != nil {
		return nil, err
	}
	start, end := days[0], days[len(days)-1]
	rows, err := s.pool.Query(ctx, dailyReportSQL, merchant, start.Format(time.DateOnly), end.Format(time.DateOnly), domain.KRW)
	if err != nil {
		return nil, fmt.Errorf("daily report: %w", err)
	}
	byDay := map[string]DailyRow{}
	var r DailyRow
	_, err = pgx.ForEachRow(rows, []any{&r.Day, &r.ApprovedCount, &r.ApprovedAmount, &r.CanceledCount, &r.CanceledAmount, &r.PSPFees}, func() error {
		byDay[r.Day] = r
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("daily report: %w", err)
	}
	out := make([]DailyRow, len(days))
	for i, d := range days {
		day := d.Format(time.DateOnly)
		row, ok := byDay[day]
		if !ok {
			row = DailyRow{Day: day, ApprovedAmount: decimal.Zero, CanceledAmount: decimal.Zero, PSPFees: decimal.Zero}
		}
		row.NetAmount = row.ApprovedAmount.Sub(row.CanceledAmount)
		out[i] = row
	}
	return out, nil
}

// DailyTotals are the sums of a report's days.
type DailyTotals struct {
	ApprovedCount  int             `json:"approvedCount"`
	ApprovedAmount decimal.Decimal `json:"approvedAmount"`
	CanceledCount  int             `json:"canceledCount"`
	CanceledAmount decimal.Decimal `json:"canceledAmount"`
	NetAmount      decimal.Decimal `json:"netAmount"`
	PSPFees        decimal.Decimal `json:"pspFees"`
}

// dailyReportSQL reads the ledger's rollup of the merchant's days [$2, $3] in currency $4:
// ledger_daily_totals, which the ledger projection keeps with the journal entries (see
// projections.dailyDelta for what each entry adds), so a month is 31 rows whatever the volume.
const dailyReportSQL = `
	SELECT day, approved_count, approved_amount, canceled_count, canceled_amount, psp_fees
	FROM ledger_daily_totals
	WHERE merchant_id = $1 AND currency = $4 AND day BETWEEN $2 AND $3`

// ReportTotals sums a report's days.
func ReportTotals(days []DailyRow) DailyTotals {
	t := DailyTotals{ApprovedAmount: decimal.Zero, CanceledAmount: decimal.Zero, NetAmount: decimal.Zero, PSPFees: decimal.Zero}
	for _, d := range days {
		t.ApprovedCount += d.ApprovedCount
		t.ApprovedAmount = t.ApprovedAmount.Add(d.ApprovedAmount)
		t.CanceledCount += d.CanceledCount
		t.CanceledAmount = t.CanceledAmount.Add(d.CanceledAmount)
		t.NetAmount = t.NetAmount.Add(d.NetAmount)
		t.PSPFees = t.PSPFees.Add(d.PSPFees)
	}
	return t
}

// ParseKSTDate reads a KST calendar day (2026-12-01) as its midnight in KST; name is the
// parameter's, for the message of an invalid-input error.
func ParseKSTDate(name, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, domain.Errorf(domain.ErrInvalidInput, "%s is required: a date such as 2026-12-01 (KST)", name)
	}
	d, err := time.ParseInLocation(time.DateOnly, s, domain.KST)
	if err != nil || d.Year() < 2000 || d.Year() > 9999 {
		return time.Time{}, domain.Errorf(domain.ErrInvalidInput, "%s must be a date such as 2026-12-01 (KST), got %q", name, clip(s, 40))
	}
	return d, nil
}

// reportDays lists the KST days from..to, checking the range.
func reportDays(from, to time.Time) ([]time.Time, error) {
	midnight := func(t time.Time) bool {
		k := t.In(domain.KST)
		return !t.IsZero() && k.Equal(time.Date(k.Year(), k.Month(), k.Day(), 0, 0, 0, 0, domain.KST))
	}
	if !midnight(from) || !midnight(to) {
		return nil, domain.Errorf(domain.ErrInvalidInput, "from and to must be KST calendar days (midnight KST)")
	}
	from, to = from.In(domain.KST), to.In(domain.KST)
	if to.Before(from) {
		return nil, domain.Errorf(domain.ErrInvalidInput, "from (%s) must not be after to (%s)", from.Format(time.DateOnly), to.Format(time.DateOnly))
	}
	var days []time.Time
	for d := from; !d.After(to); d = d.AddDate(0, 0, 1) {
		if len(days) == MaxReportDays {
			return nil, domain.Errorf(domain.ErrInvalidInput, "from..to spans more than %d days; ask for a shorter range", MaxReportDays)
		}
		days = append(days, d)
	}
	return days, nil
}
