package toss

import (
	"encoding/json"
	"testing"
)

// TestDecodeTolerance covers shapes not in the sample files but allowed by the docs or seen in
// neighbouring payloads: "suppliedAmount", a null fee, "" and offset-less times, "bankCode".
func TestDecodeTolerance(t *testing.T) {
	t.Run("settlement suppliedAmount and null fee", func(t *testing.T) {
		var s Settlement
		err := json.Unmarshal([]byte(`{"amount":"34000","fee":null,"fees":[{"type":"BASE","fee":"800"},{"type":"INSTALLMENT","fee":60}],
			"suppliedAmount":782,"vat":78,"payOutAmount":33140,"easyPay":"","approvedAt":"2021-12-30T12:30:09+09:00"}`), &s)
		if err != nil {
			t.Fatal(err)
		}
		wantDec(t, "amount from a string", s.Amount, "34000")
		wantDec(t, "fee from mixed fees", s.Fee, "860")
		wantDec(t, "supplyAmount from suppliedAmount", s.SupplyAmount, "782")
		wantEq(t, "easyPay nil", s.EasyPay == nil, true)
	})
	t.Run("settlement supplyAmount wins", func(t *testing.T) {
		var s Settlement
		if err := json.Unmarshal([]byte(`{"supplyAmount":1,"suppliedAmount":2,"fee":"3"}`), &s); err != nil {
			t.Fatal(err)
		}
		wantDec(t, "supplyAmount", s.SupplyAmount, "1")
		wantDec(t, "fee from a string", s.Fee, "3")
	})
	t.Run("payment empty and offset-less times", func(t *testing.T) {
		var p Payment
		err := json.Unmarshal([]byte(`{"requestedAt":"2026-01-02T14:46:59.65327","approvedAt":"","method":null,
			"orderName":null,"easyPay":{"provider":"토스페이","amount":null},"cancels":[{"canceledAt":null,"cancelAmount":100}],
			"virtualAccount":{"dueDate":null,"refundReceiveAccount":{"bankCode":"20","accountNumber":"1","holderName":"x"}},
			"unknownField":{"nested":[1,2]},"transfer":{"bankCode":"88"}}`), &p)
		if err != nil {
			t.Fatal(err)
		}
		wantTime(t, "requestedAt in KST", p.RequestedAt, "2026-01-02T14:46:59.65327+09:00")
		wantTimePtr(t, "approvedAt \"\"", p.ApprovedAt, "")
		wantTimePtr(t, "canceledAt null", p.Cancels[0].CanceledAt, "")
		wantDec(t, "cancelAmount", p.Cancels[0].CancelAmount, "100")
		wantEq(t, "easyPay provider", p.EasyPay.Provider, "토스페이")
		wantEq(t, "dueDate null", p.VirtualAccount.DueDate.IsZero(), true)
		wantEq(t, "refund bank from bankCode", p.VirtualAccount.RefundReceiveAccount.Bank, "20")
		wantEq(t, "transfer kept raw", string(p.Transfer), `{"bankCode":"88"}`)
	})
	t.Run("bad amount is an error", func(t *testing.T) {
		var p Payment
		if err := json.Unmarshal([]byte(`{"totalAmount":"lots"}`), &p); err == nil {
			t.Error("no error for a non-numeric amount")
		}
		if err := json.Unmarshal([]byte(`{"approvedAt":"yesterday"}`), &p); err == nil {
			t.Error("no error for a non-date approvedAt")
		}
	})
}

func TestLocalDateTime(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"2021-12-31T15:00:00Z", "2022-01-01T00:00:00"},
		{"2022-01-01T23:59:59.999+09:00", "2022-01-01T23:59:59.999"},
		{"2022-01-01T23:59:59.0000001+09:00", "2022-01-01T23:59:59"},
	} {
		var o optTime
		if err := o.UnmarshalJSON([]byte(`"` + tc.in + `"`)); err != nil {
			t.Fatal(err)
		}
		if got := localDateTime(o.t); got != tc.want {
			t.Errorf("localDateTime(%s) = %s, want %s", tc.in, got, tc.want)
		}
	}
}
