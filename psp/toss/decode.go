package toss

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/shopspring/decimal"
)

// The UnmarshalJSON methods below decode into an alias type (which has no methods, so no
// recursion) and shadow the fields that need tolerant decoding with fields of the same JSON name
// at a shallower depth, which encoding/json prefers.

// kst is Korea Standard Time. Toss writes offset-less local times in it (webhook createdAt) and
// expects them in the transactions query. Korea has no daylight saving time, so a fixed zone is
// exact and needs no tzdata.
var kst = time.FixedZone("KST", 9*60*60)

// localLayout is a date-time without offset; the fraction is optional when parsing.
const localLayout = "2006-01-02T15:04:05.999999999"

// optTime decodes a date-time that may be null, "", RFC 3339 with an offset, or local KST
// without an offset.
type optTime struct {
	t  time.Time
	ok bool
}

func (o *optTime) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("date-time: %w", err)
	}
	if s == "" {
		return nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		var errLocal error
		if t, errLocal = time.ParseInLocation(localLayout, s, kst); errLocal != nil {
			return fmt.Errorf("date-time %q: %w", s, err)
		}
	}
	o.t, o.ok = t, true
	return nil
}

func (o optTime) ptr() *time.Time {
	if !o.ok {
		return nil
	}
	t := o.t
	return &t
}

// decodeEasyPay accepts an object, a bare provider string, "", null or nothing.
func decodeEasyPay(raw json.RawMessage) (*EasyPay, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, fmt.Errorf("easyPay: %w", err)
		}
		if s == "" {
			return nil, nil
		}
		return &EasyPay{Provider: s}, nil
	}
	var e EasyPay
	if err := json.Unmarshal(raw, &e); err != nil {
		return nil, fmt.Errorf("easyPay: %w", err)
	}
	return &e, nil
}

// nilIfNull turns a JSON null kept in a RawMessage into nil, so "absent" and "null" look alike.
func nilIfNull(raw json.RawMessage) json.RawMessage {
	if t := bytes.TrimSpace(raw); len(t) == 0 || string(t) == "null" {
		return nil
	}
	return raw
}

func (p *Payment) UnmarshalJSON(b []byte) error {
	type plain Payment
	*p = Payment{}
	aux := struct {
		*plain
		RequestedAt optTime         `json:"requestedAt"`
		ApprovedAt  optTime         `json:"approvedAt"`
		EasyPay     json.RawMessage `json:"easyPay"`
	}{plain: (*plain)(p)}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	easyPay, err := decodeEasyPay(aux.EasyPay)
	if err != nil {
		return err
	}
	p.RequestedAt = aux.RequestedAt.t
	p.ApprovedAt = aux.ApprovedAt.ptr()
	p.EasyPay = easyPay
	p.Transfer = nilIfNull(p.Transfer)
	p.MobilePhone = nilIfNull(p.MobilePhone)
	p.GiftCertificate = nilIfNull(p.GiftCertificate)
	p.CashReceipt = nilIfNull(p.CashReceipt)
	p.CashReceipts = nilIfNull(p.CashReceipts)
	p.Metadata = nilIfNull(p.Metadata)
	return nil
}

func (c *Cancel) UnmarshalJSON(b []byte) error {
	type plain Cancel
	*c = Cancel{}
	aux := struct {
		*plain
		CanceledAt optTime `json:"canceledAt"`
	}{plain: (*plain)(c)}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	c.CanceledAt = aux.CanceledAt.ptr()
	return nil
}

func (v *VirtualAccount) UnmarshalJSON(b []byte) error {
	type plain VirtualAccount
	*v = VirtualAccount{}
	aux := struct {
		*plain
		DueDate optTime `json:"dueDate"`
	}{plain: (*plain)(v)}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	v.DueDate = aux.DueDate.t
	return nil
}

// UnmarshalJSON accepts the bank code as "bank" (request shape) or "bankCode" (response shape).
func (a *RefundReceiveAccount) UnmarshalJSON(b []byte) error {
	type plain RefundReceiveAccount
	*a = RefundReceiveAccount{}
	aux := struct {
		*plain
		BankCode string `json:"bankCode"`
	}{plain: (*plain)(a)}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	if a.Bank == "" {
		a.Bank = aux.BankCode
	}
	return nil
}

func (t *Transaction) UnmarshalJSON(b []byte) error {
	type plain Transaction
	*t = Transaction{}
	aux := struct {
		*plain
		TransactionAt optTime `json:"transactionAt"`
	}{plain: (*plain)(t)}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	t.TransactionAt = aux.TransactionAt.t
	return nil
}

func (s *Settlement) UnmarshalJSON(b []byte) error {
	type plain Settlement
	*s = Settlement{}
	aux := struct {
		*plain
		Fee            *decimal.Decimal `json:"fee"`
		SupplyAmount   *decimal.Decimal `json:"supplyAmount"`
		SuppliedAmount *decimal.Decimal `json:"suppliedAmount"`
		ApprovedAt     optTime          `json:"approvedAt"`
		EasyPay        json.RawMessage  `json:"easyPay"`
	}{plain: (*plain)(s)}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	easyPay, err := decodeEasyPay(aux.EasyPay)
	if err != nil {
		return err
	}
	switch {
	case aux.Fee != nil:
		s.Fee = *aux.Fee
	default:
		total := decimal.Zero
		for _, f := range s.Fees {
			total = total.Add(f.Fee)
		}
		s.Fee = total
	}
	switch {
	case aux.SupplyAmount != nil:
		s.SupplyAmount = *aux.SupplyAmount
	case aux.SuppliedAmount != nil:
		s.SupplyAmount = *aux.SuppliedAmount
	}
	s.ApprovedAt = aux.ApprovedAt.t
	s.EasyPay = easyPay
	s.Transfer = nilIfNull(s.Transfer)
	s.MobilePhone = nilIfNull(s.MobilePhone)
	s.GiftCertificate = nilIfNull(s.GiftCertificate)
	return nil
}
