package domain_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/paymentledger/ledger/domain"
)

// A fixed clock: every scenario runs at t0 unless it says otherwise.
var t0 = time.Date(2026, 11, 21, 3, 0, 0, 0, time.UTC)

const (
	order    domain.OrderID    = "order-0001"
	merchant domain.MerchantID = "m_default"
	key      domain.PaymentKey = "tosssim20261121120000abcde"
)

func won(s string) decimal.Decimal { return decimal.RequireFromString(s) }

func header(at time.Time) domain.EventHeader {
	return domain.EventHeader{OrderID: order, MerchantID: merchant, At: at}
}

// Past events, named by the state they lead to.
var (
	checkedOut = domain.CheckoutCreated{
		EventHeader: header(t0.Add(-time.Minute)),
		BuyerID:     "buyer-1", OrderName: "Two books", Currency: domain.KRW,
		TotalAmount: won("25000"),
		Lines: []domain.Line{
			{LineID: "L1", SellerID: "seller-a", ProductID: "book-1", Amount: won("15000")},
			{LineID: "L2", SellerID: "seller-b", ProductID: "book-2", Amount: won("10000")},
		},
		ExpiresAt: t0.Add(39 * time.Minute),
	}
	started = domain.ConfirmationStarted{
		EventHeader: header(t0), PaymentKey: key, Amount: won("25000"),
		Attempt: 1, PSPIdempotencyKey: "order-0001:confirm:1",
	}
	approved = domain.PaymentApproved{
		EventHeader: header(t0), PaymentKey: key, ApprovedAt: t0, Method: "카드",
		TotalAmount: won("25000"), LastTransactionKey: "TX1",
	}
	rejected = domain.PaymentRejected{
		EventHeader: header(t0), PaymentKey: key, Code: "REJECT_CARD_PAYMENT", Message: "limit", Source: domain.SourcePSP,
	}
	unknown = domain.PaymentOutcomeUnknown{
		EventHeader: header(t0), PaymentKey: key, Code: "TIMEOUT", Message: "no answer", Attempt: 1,
	}
	expired = domain.PaymentExpired{EventHeader: header(t0), Reason: "session expired"}
)

// history of each status.
var given = map[domain.Status][]domain.Event{
	domain.StatusNotStarted: {checkedOut},
	domain.StatusExecuting:  {checkedOut, started},
	domain.StatusSuccess:    {checkedOut, started, approved},
	domain.StatusFailure:    {checkedOut, started, rejected},
	domain.StatusUnknown:    {checkedOut, started, unknown},
	domain.StatusExpired:    {checkedOut, expired},
}

type when func(p domain.Payment) ([]domain.Event, error)

type scenario struct {
	name    string
	given   domain.Status
	when    when
	then    []domain.Event // expected new events (nil = none)
	thenErr *domain.Error  // expected error code
	status  domain.Status  // the status after applying the new events
}

func confirm(k domain.PaymentKey, amount string) when {
	return func(p domain.Payment) ([]domain.Event, error) {
		return p.DecideConfirm(domain.ConfirmCommand{PaymentKey: k, OrderID: order, Amount: won(amount)}, t0)
	}
}

func approve(k domain.PaymentKey, amount string) when {
	return func(p domain.Payment) ([]domain.Event, error) {
		return p.DecideApproved(domain.Approval{
			PaymentKey: k, OrderID: order, TotalAmount: won(amount), ApprovedAt: t0, Method: "카드", LastTransactionKey: "TX1",
		}, t0)
	}
}

func reject(p domain.Payment) ([]domain.Event, error) {
	return p.DecideRejected("REJECT_CARD_PAYMENT", "limit", t0)
}
func unknownOutcome(p domain.Payment) ([]domain.Event, error) {
	return p.DecideUnknown("TIMEOUT", "no answer", t0)
}
func expire(p domain.Payment) ([]domain.Event, error) { return p.DecideExpired("session expired", t0) }

func TestPaymentDecider(t *testing.T) {
	scenarios := []scenario{
		// confirm
		{"confirm starts attempt 1", domain.StatusNotStarted, confirm(key, "25000"), []domain.Event{started}, nil, domain.StatusExecuting},
		{"confirm with a tampered amount is rejected and recorded", domain.StatusNotStarted, confirm(key, "100"), []domain.Event{domain.PaymentRejected{
			EventHeader: header(t0), PaymentKey: key, Code: "AMOUNT_MISMATCH",
			Message: "confirm amount 100 does not match the checkout total 25000", Source: domain.SourceValidation,
		}}, nil, domain.StatusFailure},
		{"confirm while executing is a no-op", domain.StatusExecuting, confirm(key, "25000"), nil, nil, domain.StatusExecuting},
		{"confirm while unknown is a no-op", domain.StatusUnknown, confirm(key, "25000"), nil, nil, domain.StatusUnknown},
		{"confirm after success returns the stored result", domain.StatusSuccess, confirm(key, "25000"), nil, nil, domain.StatusSuccess},
		{"confirm after success with another key", domain.StatusSuccess, confirm("other-key", "25000"), nil, domain.ErrPaymentKeyMismatch, domain.StatusSuccess},
		{"confirm after success with another amount", domain.StatusSuccess, confirm(key, "1"), nil, domain.ErrAmountMismatch, domain.StatusSuccess},
		{"confirm while executing with another key", domain.StatusExecuting, confirm("other-key", "25000"), nil, domain.ErrPaymentKeyMismatch, domain.StatusExecuting},
		{"confirm of a failed payment is refused", domain.StatusFailure, confirm(key, "25000"), nil, domain.ErrNotConfirmable, domain.StatusFailure},
		{"confirm of an expired payment is refused", domain.StatusExpired, confirm(key, "25000"), nil, domain.ErrCheckoutExpired, domain.StatusExpired},

		// approval
		{"approval of an executing payment", domain.StatusExecuting, approve(key, "25000"), []domain.Event{approved}, nil, domain.StatusSuccess},
		{"approval of an unknown payment (recovery)", domain.StatusUnknown, approve(key, "25000"), []domain.Event{approved}, nil, domain.StatusSuccess},
		{"approval again is a no-op", domain.StatusSuccess, approve(key, "25000"), nil, nil, domain.StatusSuccess},
		{"approval with another amount is refused", domain.StatusExecuting, approve(key, "24000"), nil, domain.ErrPSPResponseMismatch, domain.StatusExecuting},
		{"approval with another key is refused", domain.StatusExecuting, approve("other-key", "25000"), nil, domain.ErrPSPResponseMismatch, domain.StatusExecuting},
		{"approval of a failed payment is illegal", domain.StatusFailure, approve(key, "25000"), nil, domain.ErrIllegalTransition, domain.StatusFailure},
		{"approval of a checkout that expired unconfirmed is refused", domain.StatusExpired, approve(key, "25000"), nil, domain.ErrPSPResponseMismatch, domain.StatusExpired},

		// rejection
		{"rejection of an executing payment", domain.StatusExecuting, reject, []domain.Event{rejected}, nil, domain.StatusFailure},
		{"rejection of an unknown payment", domain.StatusUnknown, reject, []domain.Event{rejected}, nil, domain.StatusFailure},
		{"rejection again is a no-op", domain.StatusFailure, reject, nil, nil, domain.StatusFailure},
		{"rejection of a successful payment is illegal", domain.StatusSuccess, reject, nil, domain.ErrIllegalTransition, domain.StatusSuccess},
		{"rejection before any confirm is illegal", domain.StatusNotStarted, reject, nil, domain.ErrIllegalTransition, domain.StatusNotStarted},
		{"rejection of an expired payment is illegal", domain.StatusExpired, reject, nil, domain.ErrIllegalTransition, domain.StatusExpired},

		// unknown outcome
		{"unknown outcome of an executing payment", domain.StatusExecuting, unknownOutcome, []domain.Event{unknown}, nil, domain.StatusUnknown},
		{"unknown outcome again", domain.StatusUnknown, unknownOutcome, []domain.Event{unknown}, nil, domain.StatusUnknown},
		{"unknown outcome after success is illegal", domain.StatusSuccess, unknownOutcome, nil, domain.ErrIllegalTransition, domain.StatusSuccess},
		{"unknown outcome after failure is illegal", domain.StatusFailure, unknownOutcome, nil, domain.ErrIllegalTransition, domain.StatusFailure},
		{"unknown outcome before any confirm is illegal", domain.StatusNotStarted, unknownOutcome, nil, domain.ErrIllegalTransition, domain.StatusNotStarted},
		{"unknown outcome after expiry is illegal", domain.StatusExpired, unknownOutcome, nil, domain.ErrIllegalTransition, domain.StatusExpired},

		// expiry
		{"expiry of an unconfirmed checkout", domain.StatusNotStarted, expire, []domain.Event{expired}, nil, domain.StatusExpired},
		{"expiry of an executing payment (PSP session gone)", domain.StatusExecuting, expire, []domain.Event{expired}, nil, domain.StatusExpired},
		{"expiry of an unknown payment", domain.StatusUnknown, expire, []domain.Event{expired}, nil, domain.StatusExpired},
		{"expiry again is a no-op", domain.StatusExpired, expire, nil, nil, domain.StatusExpired},
		{"expiry of a successful payment is illegal", domain.StatusSuccess, expire, nil, domain.ErrIllegalTransition, domain.StatusSuccess},
		{"expiry of a failed payment is illegal", domain.StatusFailure, expire, nil, domain.ErrIllegalTransition, domain.StatusFailure},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			p, err := domain.Rebuild(given[sc.given])
			if err != nil {
				t.Fatal(err)
			}
			if p.Status != sc.given {
				t.Fatalf("given: status %s, want %s", p.Status, sc.given)
			}
			got, err := sc.when(p)
			switch {
			case sc.thenErr != nil && !errors.Is(err, sc.thenErr):
				t.Fatalf("then: error %v, want %s", err, sc.thenErr.Code)
			case sc.thenErr == nil && err != nil:
				t.Fatalf("then: unexpected error %v", err)
			}
			if !reflect.DeepEqual(got, sc.then) {
				t.Fatalf("then: events\n got %#v\nwant %#v", got, sc.then)
			}
			for _, e := range got {
				if err := p.Apply(e); err != nil {
					t.Fatal(err)
				}
			}
			if p.Status != sc.status {
				t.Fatalf("then: status %s, want %s", p.Status, sc.status)
			}
		})
	}
}

func TestConfirmAfterCheckoutExpiryRecordsExpiry(t *testing.T) {
	p, _ := domain.Rebuild(given[domain.StatusNotStarted])
	late := p.ExpiresAt
	got, err := p.DecideConfirm(domain.ConfirmCommand{PaymentKey: key, OrderID: order, Amount: won("25000")}, late)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].EventType() != domain.EventPaymentExpired {
		t.Fatalf("got %#v, want one PaymentExpired", got)
	}
}

func TestCheckoutComputesTotalFromLines(t *testing.T) {
	e, err := domain.Checkout(domain.CheckoutCommand{
		OrderID: order, MerchantID: merchant, BuyerID: "buyer-1", OrderName: "Two books", Currency: domain.KRW,
		Lines: []domain.CheckoutLine{
			{SellerID: "seller-a", ProductID: "book-1", Amount: won("15000")},
			{SellerID: "seller-b", ProductID: "book-2", Amount: won("10000")},
		},
	}, t0.Add(-time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(e, checkedOut) {
		t.Fatalf("got %#v\nwant %#v", e, checkedOut)
	}
}

func TestCheckoutRefusesBadInput(t *testing.T) {
	ok := domain.CheckoutCommand{
		OrderID: order, MerchantID: merchant, BuyerID: "b", OrderName: "n", Currency: domain.KRW,
		Lines: []domain.CheckoutLine{{SellerID: "s", ProductID: "p", Amount: won("1000")}},
	}
	cases := []struct {
		name    string
		mutate  func(c *domain.CheckoutCommand)
		code    *domain.Error
		message string
	}{
		{"no lines", func(c *domain.CheckoutCommand) { c.Lines = nil }, domain.ErrInvalidInput, "lines must hold 1 to 100"},
		{"zero amount", func(c *domain.CheckoutCommand) { c.Lines[0].Amount = won("0") }, domain.ErrInvalidAmount, "greater than zero"},
		{"negative amount", func(c *domain.CheckoutCommand) { c.Lines[0].Amount = won("-5") }, domain.ErrInvalidAmount, "greater than zero"},
		{"fractional won", func(c *domain.CheckoutCommand) { c.Lines[0].Amount = won("10.5") }, domain.ErrInvalidAmount, "whole numbers"},
		{"too large", func(c *domain.CheckoutCommand) { c.Lines[0].Amount = won("1000000000001") }, domain.ErrInvalidAmount, "at most"},
		{"missing order name", func(c *domain.CheckoutCommand) { c.OrderName = "" }, domain.ErrInvalidInput, "orderName is required"},
		{"long order name", func(c *domain.CheckoutCommand) { c.OrderName = strings.Repeat("가", 101) }, domain.ErrInvalidInput, "at most 100"},
		{"missing seller", func(c *domain.CheckoutCommand) { c.Lines[0].SellerID = "" }, domain.ErrInvalidInput, "lines[0].sellerId is required"},
		{"control character", func(c *domain.CheckoutCommand) { c.BuyerID = "a\x00b" }, domain.ErrInvalidInput, "control characters"},
		{"bad order id", func(c *domain.CheckoutCommand) { c.OrderID = "a b" }, domain.ErrInvalidInput, "orderId"},
		{"other currency", func(c *domain.CheckoutCommand) { c.Currency = "USD" }, domain.ErrInvalidInput, "not supported"},
		{"several problems are all reported", func(c *domain.CheckoutCommand) { c.OrderName = ""; c.BuyerID = "" }, domain.ErrInvalidInput, "buyerId is required; orderName is required"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			c.Lines = append([]domain.CheckoutLine(nil), ok.Lines...)
			tc.mutate(&c)
			_, err := domain.Checkout(c, t0)
			if !errors.Is(err, tc.code) || domain.KindOf(err) != domain.KindInvalid {
				t.Fatalf("error %v, want code %s kind invalid", err, tc.code.Code)
			}
			if !strings.Contains(err.Error(), tc.message) {
				t.Fatalf("error %q does not mention %q", err, tc.message)
			}
		})
	}
}

func TestParseAmount(t *testing.T) {
	good := map[string]string{"15000": "15000", "1": "1", "15000.00": "15000", "1000000000000": "1000000000000"}
	for in, want := range good {
		d, err := domain.ParseAmount(in, domain.KRW)
		if err != nil || d.String() != want {
			t.Errorf("ParseAmount(%q) = %s, %v; want %s", in, d, err, want)
		}
	}
	for _, in := range []string{"0", "-1", "10.5", "1e3", "1E3", "NaN", "Infinity", "", " 1", "0x10", "+5", "abc", "1000000000001", "1.", ".5"} {
		if _, err := domain.ParseAmount(in, domain.KRW); !errors.Is(err, domain.ErrInvalidAmount) {
			t.Errorf("ParseAmount(%q) error %v, want INVALID_AMOUNT", in, err)
		}
	}
}

func TestEventsRoundTrip(t *testing.T) {
	for _, e := range []domain.Event{checkedOut, started, approved, rejected, unknown, expired} {
		b, err := domain.MarshalEvent(e)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), `"merchantId":"m_default"`) {
			t.Errorf("%s does not carry the merchant: %s", e.EventType(), b)
		}
		back, err := domain.UnmarshalEvent(string(e.EventType()), domain.SchemaVersion, b)
		if err != nil {
			t.Fatal(err)
		}
		// decimal and time values compare by value, not by representation.
		b2, _ := domain.MarshalEvent(back)
		if string(b) != string(b2) {
			t.Errorf("%s round trip:\n%s\n%s", e.EventType(), b, b2)
		}
	}
	if _, err := domain.UnmarshalEvent("Nope", 1, []byte(`{}`)); err == nil {
		t.Error("unknown event type decoded without error")
	}
	if _, err := domain.UnmarshalEvent("CheckoutCreated", 99, []byte(`{}`)); err == nil {
		t.Error("unknown schema version decoded without error")
	}
	if !strings.Contains(string(mustMarshal(t, checkedOut)), `"totalAmount":"25000"`) {
		t.Error("amounts must be stored as decimal strings")
	}
}

func mustMarshal(t *testing.T, e domain.Event) []byte {
	b, err := domain.MarshalEvent(e)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
