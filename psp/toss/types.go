package toss

import (
	"encoding/json"
	"time"

	"github.com/shopspring/decimal"
)

// PaymentStatus is Payment.status (and Transaction.status).
type PaymentStatus string

const (
	StatusReady             PaymentStatus = "READY"
	StatusInProgress        PaymentStatus = "IN_PROGRESS"
	StatusWaitingForDeposit PaymentStatus = "WAITING_FOR_DEPOSIT"
	StatusDone              PaymentStatus = "DONE"
	StatusCanceled          PaymentStatus = "CANCELED"
	StatusPartialCanceled   PaymentStatus = "PARTIAL_CANCELED"
	StatusAborted           PaymentStatus = "ABORTED"
	StatusExpired           PaymentStatus = "EXPIRED"
)

// ConfirmRequest is the body of POST /v1/payments/confirm. Amount must equal the amount the
// merchant stored for OrderID and must be positive.
type ConfirmRequest struct {
	PaymentKey string
	OrderID    string
	Amount     decimal.Decimal
}

// CancelRequest is the body of POST /v1/payments/{paymentKey}/cancel.
type CancelRequest struct {
	CancelReason string           // required, at most 200 characters
	CancelAmount *decimal.Decimal // nil cancels the whole remaining balance
	// TaxFreeAmount is the tax-free part of the cancel; nil leaves it out (Toss's default is 0).
	TaxFreeAmount *decimal.Decimal
	// RefundReceiveAccount is required for virtual-account payments and unused otherwise.
	RefundReceiveAccount *RefundReceiveAccount
	// Currency is required ("USD") for PayPal partial cancels; "" leaves it out.
	Currency string
}

// RefundReceiveAccount is the account a virtual-account refund is paid into. In a request Toss
// names the bank field "bank"; inside a Payment's virtualAccount it is "bankCode". Both decode
// into Bank; it always encodes as "bank".
type RefundReceiveAccount struct {
	Bank          string `json:"bank"` // bank code
	AccountNumber string `json:"accountNumber"`
	HolderName    string `json:"holderName"`
}

// TransactionsQuery selects one page of GET /v1/transactions. Transactions are selected by
// transactionAt. StartDate and EndDate are required and are sent as Korean local time without
// an offset (2022-01-01T00:00:00), whatever their location. To page, pass the last row's
// TransactionKey as StartingAfter. Limit 0 leaves Toss's default (100).
type TransactionsQuery struct {
	StartDate, EndDate time.Time
	StartingAfter      string
	Limit              int
}

// SettlementsQuery selects one page of GET /v1/settlements. StartDate and EndDate are required
// dates (yyyy-MM-dd). DateType is "" (Toss's default, soldDate), "soldDate" or "paidOutDate".
// Page and Size 0 leave Toss's defaults (1 and 100).
type SettlementsQuery struct {
	StartDate, EndDate string
	DateType           string
	Page, Size         int
}

// Payment is Toss's Payment object. Fields absent from a response, or null, are zero (nil for
// pointers, slices and raw JSON). Nested objects the ledger does not interpret are kept as raw
// JSON.
type Payment struct {
	Version             string          `json:"version"`
	PaymentKey          string          `json:"paymentKey"`
	Type                string          `json:"type"` // NORMAL, BILLING, BRANDPAY
	OrderID             string          `json:"orderId"`
	OrderName           string          `json:"orderName"`
	MID                 string          `json:"mId"`
	Currency            string          `json:"currency"`
	Method              string          `json:"method"` // Korean label (카드, 가상계좌, 간편결제...); "" when null
	TotalAmount         decimal.Decimal `json:"totalAmount"`
	BalanceAmount       decimal.Decimal `json:"balanceAmount"` // still cancelable
	Status              PaymentStatus   `json:"status"`
	RequestedAt         time.Time       `json:"requestedAt"`
	ApprovedAt          *time.Time      `json:"approvedAt"`
	UseEscrow           bool            `json:"useEscrow"` // false when null (seen while IN_PROGRESS)
	LastTransactionKey  string          `json:"lastTransactionKey"`
	SuppliedAmount      decimal.Decimal `json:"suppliedAmount"`
	VAT                 decimal.Decimal `json:"vat"`
	TaxFreeAmount       decimal.Decimal `json:"taxFreeAmount"`
	TaxExemptionAmount  decimal.Decimal `json:"taxExemptionAmount"`
	CultureExpense      bool            `json:"cultureExpense"`
	IsPartialCancelable bool            `json:"isPartialCancelable"`
	Cancels             []Cancel        `json:"cancels"`
	Card                *Card           `json:"card"`
	VirtualAccount      *VirtualAccount `json:"virtualAccount"`
	Transfer            json.RawMessage `json:"transfer"`
	MobilePhone         json.RawMessage `json:"mobilePhone"`
	GiftCertificate     json.RawMessage `json:"giftCertificate"`
	EasyPay             *EasyPay        `json:"easyPay"`
	Secret              string          `json:"secret"` // checks DEPOSIT_CALLBACK webhooks
	Receipt             *Link           `json:"receipt"`
	Checkout            *Link           `json:"checkout"`
	Country             string          `json:"country"`
	Failure             *Failure        `json:"failure"` // set on ABORTED and EXPIRED payments
	CashReceipt         json.RawMessage `json:"cashReceipt"`
	CashReceipts        json.RawMessage `json:"cashReceipts"`
	Discount            *Discount       `json:"discount"`
	Metadata            json.RawMessage `json:"metadata"`
}

// Cancel is one entry of Payment.cancels (or Settlement.cancel).
type Cancel struct {
	CancelAmount           decimal.Decimal `json:"cancelAmount"`
	CancelReason           string          `json:"cancelReason"`
	TaxFreeAmount          decimal.Decimal `json:"taxFreeAmount"`
	TaxExemptionAmount     decimal.Decimal `json:"taxExemptionAmount"`
	RefundableAmount       decimal.Decimal `json:"refundableAmount"` // balance left after this cancel
	EasyPayDiscountAmount  decimal.Decimal `json:"easyPayDiscountAmount"`
	TransferDiscountAmount decimal.Decimal `json:"transferDiscountAmount"`
	CanceledAt             *time.Time      `json:"canceledAt"`
	TransactionKey         string          `json:"transactionKey"`
	ReceiptKey             string          `json:"receiptKey"`
	CancelStatus           string          `json:"cancelStatus"` // DONE; IN_PROGRESS or ABORTED for overseas easy pay
	CancelRequestID        string          `json:"cancelRequestId"`
}

// Card is Payment.card.
type Card struct {
	Amount                decimal.Decimal `json:"amount"` // sent to the card company, instant discount included
	IssuerCode            string          `json:"issuerCode"`
	AcquirerCode          string          `json:"acquirerCode"`
	Number                string          `json:"number"` // masked
	InstallmentPlanMonths int             `json:"installmentPlanMonths"`
	ApproveNo             string          `json:"approveNo"`
	UseCardPoint          bool            `json:"useCardPoint"`
	CardType              string          `json:"cardType"`
	OwnerType             string          `json:"ownerType"`
	AcquireStatus         string          `json:"acquireStatus"`
	IsInterestFree        bool            `json:"isInterestFree"`
	InterestPayer         string          `json:"interestPayer"`
}

// VirtualAccount is Payment.virtualAccount.
type VirtualAccount struct {
	AccountType          string                `json:"accountType"` // 일반, 고정
	AccountNumber        string                `json:"accountNumber"`
	BankCode             string                `json:"bankCode"`
	CustomerName         string                `json:"customerName"`
	DueDate              time.Time             `json:"dueDate"`
	RefundStatus         string                `json:"refundStatus"`
	Expired              bool                  `json:"expired"`
	SettlementStatus     string                `json:"settlementStatus"`
	RefundReceiveAccount *RefundReceiveAccount `json:"refundReceiveAccount"`
	DepositorName        string                `json:"depositorName"`
}

// EasyPay is Payment.easyPay. Toss's docs once show it as a bare string ("토스페이"); that
// decodes into Provider.
type EasyPay struct {
	Provider       string          `json:"provider"`
	Amount         decimal.Decimal `json:"amount"`
	DiscountAmount decimal.Decimal `json:"discountAmount"`
}

// Link is an object holding one URL (Payment.receipt, Payment.checkout).
type Link struct {
	URL string `json:"url"`
}

// Failure is Payment.failure.
type Failure struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Discount is Payment.discount, the card company's instant discount.
type Discount struct {
	Amount decimal.Decimal `json:"amount"`
}

// Transaction is one row of GET /v1/transactions: one approval, cancel or partial cancel.
type Transaction struct {
	MID            string          `json:"mId"`
	TransactionKey string          `json:"transactionKey"`
	PaymentKey     string          `json:"paymentKey"`
	OrderID        string          `json:"orderId"`
	Method         string          `json:"method"`
	CustomerKey    string          `json:"customerKey"`
	UseEscrow      bool            `json:"useEscrow"`
	ReceiptURL     string          `json:"receiptUrl"`
	Status         PaymentStatus   `json:"status"`
	TransactionAt  time.Time       `json:"transactionAt"`
	Currency       string          `json:"currency"`
	Amount         decimal.Decimal `json:"amount"`
}

// Settlement is one row of GET /v1/settlements. Rows for cancels carry negative amounts and a
// Cancel.
//
// Fee is the total fee. Toss has sent it three ways: a single "fee" number, a "fees" array whose
// fee values are numbers or strings, or both. Fee is "fee" when present, else the sum of Fees.
// SupplyAmount is "supplyAmount" or, failing that, "suppliedAmount". For the rows seen,
// SupplyAmount + VAT = Fee and PayOutAmount = Amount - Fee.
type Settlement struct {
	MID             string          `json:"mId"`
	PaymentKey      string          `json:"paymentKey"`
	TransactionKey  string          `json:"transactionKey"`
	OrderID         string          `json:"orderId"`
	Currency        string          `json:"currency"`
	Method          string          `json:"method"`
	Amount          decimal.Decimal `json:"amount"`
	InterestFee     decimal.Decimal `json:"interestFee"`
	Fee             decimal.Decimal `json:"fee"`
	Fees            []SettlementFee `json:"fees"`
	SupplyAmount    decimal.Decimal `json:"supplyAmount"`
	VAT             decimal.Decimal `json:"vat"`
	PayOutAmount    decimal.Decimal `json:"payOutAmount"`
	ApprovedAt      time.Time       `json:"approvedAt"`
	SoldDate        string          `json:"soldDate"`    // yyyy-MM-dd
	PaidOutDate     string          `json:"paidOutDate"` // yyyy-MM-dd
	Card            *Card           `json:"card"`
	EasyPay         *EasyPay        `json:"easyPay"`
	VirtualAccount  *VirtualAccount `json:"virtualAccount"`
	Transfer        json.RawMessage `json:"transfer"`
	MobilePhone     json.RawMessage `json:"mobilePhone"`
	GiftCertificate json.RawMessage `json:"giftCertificate"`
	Cancel          *Cancel         `json:"cancel"`
}

// SettlementFee is one entry of Settlement.fees. Type is BASE, INSTALLMENT_DISCOUNT,
// INSTALLMENT, POINT_SAVING or ETC.
type SettlementFee struct {
	Type string          `json:"type"`
	Fee  decimal.Decimal `json:"fee"`
}
