package toss_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/paymentledger/ledger/psp/toss"
	"github.com/shopspring/decimal"
)

// A confirm that Toss answers with ALREADY_PROCESSED_PAYMENT: the outcome is unknown until the
// payment is read back.
func ExampleClassOf() {
	fake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"code":"ALREADY_PROCESSED_PAYMENT","message":"이미 처리된 결제 입니다."}`)
	}))
	defer fake.Close()

	c, err := toss.New(fake.URL, "test_sk_example")
	if err != nil {
		panic(err)
	}
	_, err = c.Confirm(context.Background(), toss.ConfirmRequest{
		PaymentKey: "tviva20231208004903pIlD7",
		OrderID:    "order-0001",
		Amount:     decimal.RequireFromString("15000"),
	}, "order-0001")
	switch toss.ClassOf(err) {
	case toss.ClassUnknownOutcome:
		fmt.Println("read the payment back:", err)
	case toss.ClassFinal:
		fmt.Println("mark the order failed:", err)
	case toss.ClassMerchantConfig:
		fmt.Println("alert:", err)
	}
	// Output: read the payment back: toss confirm: HTTP 400 ALREADY_PROCESSED_PAYMENT: 이미 처리된 결제 입니다. (unknown outcome)
}
