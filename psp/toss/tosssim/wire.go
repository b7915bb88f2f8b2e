package tosssim

import (
	"bytes"
	"encoding/json"
	"errors"
	"time"

	"github.com/shopspring/decimal"
)

// The structs in this file are the wire shapes of toss-api.md §5, §5.1, §5.2 and §6, with
// the key order of the recorded samples (payment-done-card.json, transactions-list.json).
// They are the server's own: the simulator does not import the client package.

// apiVersion is the only API version simulated.
const apiVersion = "2022-11-16"

// kst is fixed so the simulator does not depend on tzdata being installed.
var kst = time.FixedZone("KST", 9*60*60)

// wireTimeLayout is ISO-8601 with a numeric offset and no fraction, as in every sample
// (`2022-01-01T10:01:30+09:00`). "-07:00" rather than "Z07:00" so it never prints "Z".
const wireTimeLayout = "2006-01-02T15:04:05-07:00"

func wireTime(t time.Time) string { return t.In(kst).Format(wireTimeLayout) }

func wireTimePtr(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := wireTime(t)
	return &s
}

// won is a KRW amount on the wire: a bare JSON integer, never a string or a float64.
type won struct{ d decimal.Decimal }

func (w won) MarshalJSON() ([]byte, error) { return []byte(w.d.String()), nil }

type wirePayment struct {
	MID                 string       `json:"mId"`
	LastTransactionKey  *string      `json:"lastTransactionKey"`
	PaymentKey          string       `json:"paymentKey"`
	OrderID             string       `json:"orderId"`
	OrderName           string       `json:"orderName"`
	TaxExemptionAmount  won          `json:"taxExemptionAmount"`
	Status              Status       `json:"status"`
	RequestedAt         string       `json:"requestedAt"`
	ApprovedAt          *string      `json:"approvedAt"`
	UseEscrow           *bool        `json:"useEscrow"`
	CultureExpense      bool         `json:"cultureExpense"`
	Card                *wireCard    `json:"card"`
	VirtualAccount      any          `json:"virtualAccount"` // not simulated: always null
	Transfer            any          `json:"transfer"`       // not simulated: always null
	MobilePhone         any          `json:"mobilePhone"`    // not simulated: always null
	GiftCertificate     any          `json:"giftCertificate"`
	CashReceipt         any          `json:"cashReceipt"`
	CashReceipts        any          `json:"cashReceipts"`
	Discount            any          `json:"discount"`
	Cancels             []wireCancel `json:"cancels"` // nil marshals as null, as Toss sends before any cancel
	Secret              *string      `json:"secret"`
	Type                string       `json:"type"`
	EasyPay             *wireEasyPay `json:"easyPay"`
	Country             string       `json:"country"`
	Failure             *failure     `json:"failure"`
	IsPartialCancelable bool         `json:"isPartialCancelable"`
	Receipt             *wireURL     `json:"receipt"`
	Checkout            wireURL      `json:"checkout"`
	Currency            string       `json:"currency"`
	TotalAmount         won          `json:"totalAmount"`
	BalanceAmount       won          `json:"balanceAmount"`
	SuppliedAmount      won          `json:"suppliedAmount"`
	VAT                 won          `json:"vat"`
	TaxFreeAmount       won          `json:"taxFreeAmount"`
	Method              *string      `json:"method"`
	Version             string       `json:"version"`
	Metadata            any          `json:"metadata"`
}

type wireCard struct {
	IssuerCode            string  `json:"issuerCode"`
	AcquirerCode          *string `json:"acquirerCode"`
	Number                string  `json:"number"`
	InstallmentPlanMonths int     `json:"installmentPlanMonths"`
	IsInterestFree        bool    `json:"isInterestFree"`
	InterestPayer         *string `json:"interestPayer"`
	ApproveNo             string  `json:"approveNo"`
	UseCardPoint          bool    `json:"useCardPoint"`
	CardType              string  `json:"cardType"`
	OwnerType             string  `json:"ownerType"`
	AcquireStatus         string  `json:"acquireStatus"`
	Amount                won     `json:"amount"`
}

type wireEasyPay struct {
	Provider       string `json:"provider"`
	Amount         won    `json:"amount"`
	DiscountAmount won    `json:"discountAmount"`
}

type wireURL struct {
	URL string `json:"url"`
}

type failure struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

type wireCancel struct {
	CancelReason           string  `json:"cancelReason"`
	CanceledAt             string  `json:"canceledAt"`
	CancelAmount           won     `json:"cancelAmount"`
	TaxFreeAmount          won     `json:"taxFreeAmount"`
	TaxExemptionAmount     won     `json:"taxExemptionAmount"`
	RefundableAmount       won     `json:"refundableAmount"`
	TransferDiscountAmount won     `json:"transferDiscountAmount"`
	EasyPayDiscountAmount  won     `json:"easyPayDiscountAmount"`
	TransactionKey         string  `json:"transactionKey"`
	ReceiptKey             *string `json:"receiptKey"`
	CancelStatus           string  `json:"cancelStatus"`
	CancelRequestID        *string `json:"cancelRequestId"`
}

type wireTransaction struct {
	MID            string  `json:"mId"`
	TransactionKey string  `json:"transactionKey"`
	PaymentKey     string  `json:"paymentKey"`
	OrderID        string  `json:"orderId"`
	Method         string  `json:"method"`
	CustomerKey    *string `json:"customerKey"`
	UseEscrow      bool    `json:"useEscrow"`
	ReceiptURL     string  `json:"receiptUrl"`
	Status         Status  `json:"status"`
	TransactionAt  string  `json:"transactionAt"`
	Currency       string  `json:"currency"`
	Amount         won     `json:"amount"`
}

type wireError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// marshal encodes v compactly without HTML escaping, so receipt URLs keep a literal "&" as
// Toss sends them.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// parseAmount reads a JSON amount. allowString admits a decimal string as well as a number;
// the core API routes accept numbers only (toss-api.md §4.1: strings are UNCONFIRMED, the
// client must send a number). The amount must be whole won.
func parseAmount(raw json.RawMessage, allowString bool) (decimal.Decimal, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return decimal.Decimal{}, errors.New("amount missing")
	}
	if raw[0] == '"' {
		if !allowString {
			return decimal.Decimal{}, errors.New("amount must be a JSON number")
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return decimal.Decimal{}, err
		}
		raw = []byte(s)
	}
	d, err := decimal.NewFromString(string(raw))
	if err != nil {
		return decimal.Decimal{}, err
	}
	if !d.IsInteger() {
		return decimal.Decimal{}, errors.New("KRW amounts are whole won")
	}
	return d, nil
}

// parseRate reads a JSON rate, a decimal string ("0.035") or a number, from its text, so no
// float64 ever holds it. Its range is the caller's to check.
func parseRate(raw json.RawMessage) (decimal.Decimal, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return decimal.Decimal{}, err
		}
		raw = []byte(s)
	}
	return decimal.NewFromString(string(raw))
}
