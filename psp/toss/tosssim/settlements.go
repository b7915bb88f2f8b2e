package tosssim

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/shopspring/decimal"
)

// SettlementConfig sets how the simulator settles transactions (GET /v1/settlements). Zero
// fields take the defaults, so a zero fee rate or a same-day payout cannot be configured.
type SettlementConfig struct {
	// FeeRate is the base fee rate on the amount, VAT excluded. Default 0.03.
	FeeRate decimal.Decimal
	// VATRate is the VAT rate on the fee. Default 0.1 (Korean VAT).
	VATRate decimal.Decimal
	// PayoutDays is paidOutDate − soldDate in days. Default 2 (toss-api.md §4.6's example).
	PayoutDays int
}

var (
	defaultFeeRate = decimal.RequireFromString("0.03")
	defaultVATRate = decimal.RequireFromString("0.1")
)

const (
	defaultPayoutDays     = 2
	defaultSettlementSize = 100
	maxSettlementSize     = 5000
	settlementDateLayout  = "2006-01-02"
	settlementFeeTypeBase = "BASE"
	dateTypeSoldDate      = "soldDate"
	dateTypePaidOutDate   = "paidOutDate"
)

func (c SettlementConfig) normalized() SettlementConfig {
	if c.FeeRate.IsZero() {
		c.FeeRate = defaultFeeRate
	}
	if c.VATRate.IsZero() {
		c.VATRate = defaultVATRate
	}
	if c.PayoutDays <= 0 {
		c.PayoutDays = defaultPayoutDays
	}
	return c
}

// SettlementFee is the fee the simulator charges on an amount: supply = amount × FeeRate and
// vat = supply × VATRate, each rounded half away from zero to whole won; fee = supply + vat.
// It is exported so tests elsewhere can predict a row without copying the arithmetic. A
// payment with its own rate (SessionRequest.SettlementFeeRate) is charged the same way with
// that rate in place of FeeRate; SettlementConfig{FeeRate: rate}.SettlementFee predicts it
// for any rate but 0, which that would read as the default.
func (c SettlementConfig) SettlementFee(amount decimal.Decimal) (supply, vat, fee decimal.Decimal) {
	c = c.normalized()
	return settlementFee(amount, c.FeeRate, c.VATRate)
}

// settlementFee is SettlementFee with the rates given, so a payment's own fee rate of 0 stays
// 0 rather than falling back to the default as a zero FeeRate does.
func settlementFee(amount, feeRate, vatRate decimal.Decimal) (supply, vat, fee decimal.Decimal) {
	// decimal.Round rounds half away from zero: 0.5 → 1, −0.5 → −1.
	supply = amount.Mul(feeRate).Round(0)
	vat = supply.Mul(vatRate).Round(0)
	return supply, vat, supply.Add(vat)
}

// validFeeRate reports whether rate can be a payment's own fee rate: a fraction in [0, 1).
// One or more would take the whole amount, or more, as the fee.
func validFeeRate(rate decimal.Decimal) bool {
	return !rate.IsNegative() && rate.LessThan(decimal.NewFromInt(1))
}

// SetSettlementFeeRate gives the payment of paymentKey its own fee rate in GET
// /v1/settlements, as SessionRequest.SettlementFeeRate does at the session, replacing any
// earlier one. Rows are computed when they are listed, so every row of the payment, its
// approval and its cancels, already made or not, shows fee = amount × rate (+ VAT). It returns
// an *Error: 400 INVALID_REQUEST for a rate outside [0, 1), 404 NOT_FOUND_PAYMENT for a key
// that is not a current payment, or 500 FAILED_INTERNAL_SYSTEM_PROCESSING, wrapping the cause,
// when a persisted simulator cannot save the rate (which is then not applied).
func (s *Simulator) SetSettlementFeeRate(paymentKey string, rate decimal.Decimal) error {
	if !validFeeRate(rate) {
		return apiError("INVALID_REQUEST")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	live := s.byKey[paymentKey]
	if live == nil {
		return apiError("NOT_FOUND_PAYMENT")
	}
	c := &change{}
	c.edit(live).feeRate = &rate
	if err := s.commit(c); err != nil {
		s.logStoreFailure("settlement fee rate", err)
		return fmt.Errorf("%w: %w", apiError("FAILED_INTERNAL_SYSTEM_PROCESSING"), err)
	}
	return nil
}

type wireSettlementFee struct {
	Type string `json:"type"`
	Fee  won    `json:"fee"`
}

// wireSettlement is toss-api.md §7 with the key order of settlements-list-cancel.json.
type wireSettlement struct {
	MID             string              `json:"mId"`
	PaymentKey      string              `json:"paymentKey"`
	TransactionKey  string              `json:"transactionKey"`
	OrderID         string              `json:"orderId"`
	Currency        string              `json:"currency"`
	Method          string              `json:"method"`
	Fees            []wireSettlementFee `json:"fees"`
	ApprovedAt      string              `json:"approvedAt"`
	SoldDate        string              `json:"soldDate"`
	PaidOutDate     string              `json:"paidOutDate"`
	Card            any                 `json:"card"` // not simulated: always null
	VirtualAccount  any                 `json:"virtualAccount"`
	Transfer        any                 `json:"transfer"`
	MobilePhone     any                 `json:"mobilePhone"`
	GiftCertificate any                 `json:"giftCertificate"`
	EasyPay         any                 `json:"easyPay"`
	Cancel          *wireCancel         `json:"cancel"`
	Amount          won                 `json:"amount"`
	InterestFee     won                 `json:"interestFee"`
	Fee             won                 `json:"fee"`
	SupplyAmount    won                 `json:"supplyAmount"`
	VAT             won                 `json:"vat"`
	PayOutAmount    won                 `json:"payOutAmount"`
}

// settlementRow is one transaction's settlement before rendering.
type settlementRow struct {
	tx                   *transaction
	soldDate, paidOutDay string
}

// handleSettlements is GET /v1/settlements: a bare array of the settlement rows whose soldDate
// (or paidOutDate, with dateType=paidOutDate) lies in [startDate, endDate], ordered by
// transaction time then transactionKey, page by page.
func (s *Simulator) handleSettlements(x *exchange) response {
	q := x.r.URL.Query()
	start, okStart := parseSettlementDate(q.Get("startDate"))
	end, okEnd := parseSettlementDate(q.Get("endDate"))
	if !okStart || !okEnd {
		return errorResponse(apiError("INVALID_REQUEST"))
	}
	dateType := q.Get("dateType")
	switch dateType {
	case "":
		dateType = dateTypeSoldDate
	case dateTypeSoldDate, dateTypePaidOutDate:
	default:
		return errorResponse(apiError("INVALID_REQUEST"))
	}
	page, okPage := positiveInt(q.Get("page"), 1, 0)
	size, okSize := positiveInt(q.Get("size"), defaultSettlementSize, maxSettlementSize)
	if !okPage || !okSize {
		return errorResponse(apiError("INVALID_REQUEST"))
	}
	cfg := s.cfg.Settlement

	s.mu.Lock()
	var rows []settlementRow
	for _, tx := range s.txs {
		if !settles(tx.status) {
			continue
		}
		sold := tx.at.In(kst)
		row := settlementRow{
			tx:         tx,
			soldDate:   sold.Format(settlementDateLayout),
			paidOutDay: sold.AddDate(0, 0, cfg.PayoutDays).Format(settlementDateLayout),
		}
		key := row.soldDate
		if dateType == dateTypePaidOutDate {
			key = row.paidOutDay
		}
		if key < start || key > end { // yyyy-MM-dd sorts as text
			continue
		}
		rows = append(rows, row)
	}
	slices.SortFunc(rows, func(a, b settlementRow) int { return compareTx(a.tx, b.tx) })
	// page is at least 1; a page past the end is an empty array.
	from := min((page-1)*size, len(rows))
	to := min(from+size, len(rows))
	out := make([]wireSettlement, 0, to-from)
	for _, row := range rows[from:to] {
		out = append(out, s.renderSettlement(row))
	}
	s.mu.Unlock()

	body, err := marshal(out)
	if err != nil {
		return internalError()
	}
	return response{status: http.StatusOK, body: body}
}

// settles reports whether a transaction of this status has a settlement row: approvals (DONE)
// and cancels (CANCELED, PARTIAL_CANCELED).
func settles(st Status) bool {
	switch st {
	case StatusDone, StatusCanceled, StatusPartialCanceled:
		return true
	case StatusReady, StatusInProgress, StatusWaitingForDeposit, StatusAborted, StatusExpired:
		return false
	}
	return false
}

// renderSettlement builds the row of one transaction, at the payment's own fee rate if it has
// one, else the contract's. A cancel row has amount = −cancelAmount and the fee of the
// cancelled amount, negated (the fee is refunded with the amount), so supply, vat, fee and
// payout are all negative. Callers hold s.mu.
func (s *Simulator) renderSettlement(row settlementRow) wireSettlement {
	tx := row.tx
	cfg := s.cfg.Settlement
	amount := tx.amount
	var cancel *wireCancel
	p := s.byKey[tx.paymentKey]
	if tx.status != StatusDone {
		amount = amount.Neg()
		if p != nil {
			for _, rec := range p.cancels {
				if rec.transactionKey == tx.key {
					c := rec.wire()
					cancel = &c
				}
			}
		}
	}
	rate := cfg.FeeRate
	if p != nil && p.feeRate != nil {
		rate = *p.feeRate
	}
	supply, vat, fee := settlementFee(amount.Abs(), rate, cfg.VATRate)
	if amount.IsNegative() {
		supply, vat, fee = supply.Neg(), vat.Neg(), fee.Neg()
	}
	approvedAt := tx.at
	if p != nil && !p.approvedAt.IsZero() {
		approvedAt = p.approvedAt
	}
	return wireSettlement{
		MID:            s.cfg.MID,
		PaymentKey:     tx.paymentKey,
		TransactionKey: tx.key,
		OrderID:        tx.orderID,
		Currency:       "KRW",
		Method:         tx.method,
		Fees:           []wireSettlementFee{{Type: settlementFeeTypeBase, Fee: won{fee}}},
		ApprovedAt:     wireTime(approvedAt),
		SoldDate:       row.soldDate,
		PaidOutDate:    row.paidOutDay,
		Cancel:         cancel,
		Amount:         won{amount},
		InterestFee:    won{decimal.Zero}, // no instalment interest is simulated
		Fee:            won{fee},
		SupplyAmount:   won{supply},
		VAT:            won{vat},
		PayOutAmount:   won{amount.Sub(fee)},
	}
}

// parseSettlementDate reads a yyyy-MM-dd date and returns it in the same form.
func parseSettlementDate(v string) (string, bool) {
	t, err := time.Parse(settlementDateLayout, v)
	if err != nil {
		return "", false
	}
	return t.Format(settlementDateLayout), true
}

// positiveInt reads an optional integer ≥ 1 and ≤ limit (limit 0: no upper bound).
func positiveInt(v string, def, limit int) (int, bool) {
	if v == "" {
		return def, true
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || (limit > 0 && n > limit) {
		return 0, false
	}
	return n, true
}
