package web

import (
	"context"
	"net/http"
	"time"

	"github.com/shopspring/decimal"

	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/queries"
)

// Reports is the daily report the chart needs (queries.Service.DailyReport).
type Reports interface {
	DailyReport(ctx context.Context, merchant domain.MerchantID, from, to time.Time) ([]queries.DailyRow, error)
}

// defaultChartDays is the range the chart shows without from and to: the last two weeks.
const defaultChartDays = 14

// The chart's geometry, in SVG user units.
const (
	chartLeft   = 96  // room for the axis labels
	chartTop    = 16  // above the highest bar
	chartPlot   = 220 // the plot's height
	chartBottom = 40  // room for the day labels
	chartGroup  = 44  // one day: two bars and a gap
	chartBar    = 16
)

// bar is one bar of the chart.
type bar struct {
	X, Y, W, H int
	Label      string // for the bar's own <title>
}

type tick struct {
	Y     int
	Label string
}

type dayLabel struct {
	X     int
	Label string
}

// chart is the daily chart, laid out: html/template draws it as SVG.
type chart struct {
	Width, Height                   int
	PlotLeft, PlotBottom, PlotRight int
	Approved, Canceled              []bar
	Ticks                           []tick
	Days                            []dayLabel
	Description                     string
}

// layoutChart draws approved and canceled amounts per day as bars on one scale. Heights are
// computed in decimal and rounded to whole units: no float ever holds an amount.
func layoutChart(rows []queries.DailyRow) chart {
	c := chart{Width: chartLeft + len(rows)*chartGroup + 16, Height: chartTop + chartPlot + chartBottom}
	c.PlotLeft, c.PlotBottom, c.PlotRight = chartLeft, chartTop+chartPlot, chartLeft+len(rows)*chartGroup
	peak := decimal.Zero
	for _, r := range rows {
		peak = decimal.Max(peak, r.ApprovedAmount, r.CanceledAmount)
	}
	top := niceCeiling(peak)
	height := func(d decimal.Decimal) int {
		return int(d.Mul(decimal.NewFromInt(chartPlot)).Div(top).Round(0).IntPart())
	}
	for i := range 5 {
		v := top.Mul(decimal.NewFromInt(int64(i))).Div(decimal.NewFromInt(4))
		c.Ticks = append(c.Ticks, tick{Y: c.PlotBottom - height(v), Label: won(v.Round(0))})
	}
	every := max(1, (len(rows)+15)/16) // at most 16 day labels
	for i, r := range rows {
		x := chartLeft + i*chartGroup + 4
		ha, hc := height(r.ApprovedAmount), height(r.CanceledAmount)
		c.Approved = append(c.Approved, bar{X: x, Y: c.PlotBottom - ha, W: chartBar, H: ha, Label: r.Day + " approved " + won(r.ApprovedAmount)})
		c.Canceled = append(c.Canceled, bar{X: x + chartBar + 2, Y: c.PlotBottom - hc, W: chartBar, H: hc, Label: r.Day + " canceled " + won(r.CanceledAmount)})
		if i%every == 0 {
			c.Days = append(c.Days, dayLabel{X: x + chartBar, Label: r.Day[5:]})
		}
	}
	return c
}

// niceCeiling is the axis maximum for peak: 1, 2 or 5 times a power of ten, at least peak
// (10,000원 for an empty chart).
func niceCeiling(peak decimal.Decimal) decimal.Decimal {
	if !peak.IsPositive() {
		return decimal.NewFromInt(10000)
	}
	p := decimal.New(1, int32(len(peak.Ceil().String())-1))
	for {
		for _, m := range []int64{1, 2, 5} {
			if v := p.Mul(decimal.NewFromInt(m)); v.GreaterThanOrEqual(peak) {
				return v
			}
		}
		p = p.Mul(decimal.NewFromInt(10))
	}
}

type dailyData struct {
	From, To string
	Error    string
	Rows     []queries.DailyRow
	Totals   queries.DailyTotals
	Chart    chart
}

// dailyPage serves GET /reports/daily?from=&to=: approved against canceled amounts per KST
// day, as an SVG chart drawn here and the same figures in a table.
func (h *Handler) dailyPage(w http.ResponseWriter, r *http.Request) {
	today := h.cfg.Now().In(domain.KST)
	d := dailyData{From: r.URL.Query().Get("from"), To: r.URL.Query().Get("to")}
	if d.To == "" {
		d.To = today.Format(time.DateOnly)
	}
	if d.From == "" {
		d.From = today.AddDate(0, 0, -(defaultChartDays - 1)).Format(time.DateOnly)
	}
	from, err := queries.ParseKSTDate("from", d.From)
	var to time.Time
	if err == nil {
		to, err = queries.ParseKSTDate("to", d.To)
	}
	if err == nil {
		d.Rows, err = h.cfg.Reports.DailyReport(r.Context(), sessionOf(r).Merchant, from, to)
	}
	if err != nil {
		if domain.KindOf(err) != domain.KindInvalid {
			h.failed(w, r, err)
			return
		}
		d.Error = messageOf(err)
		h.render(w, r, http.StatusBadRequest, "daily", page{Title: "Daily chart", Nav: "daily", Data: d})
		return
	}
	d.Totals = queries.ReportTotals(d.Rows)
	d.Chart = layoutChart(d.Rows)
	d.Chart.Description = "Bars per KST day from " + d.From + " to " + d.To + ": approved amounts (blue, left) and canceled amounts (red, right). " +
		"In total " + won(d.Totals.ApprovedAmount) + " approved and " + won(d.Totals.CanceledAmount) + " canceled. The table below gives every figure."
	h.render(w, r, http.StatusOK, "daily", page{Title: "Daily chart", Nav: "daily", Data: d})
}
