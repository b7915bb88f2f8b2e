package domain_test

import (
	"strings"
	"testing"

	"github.com/paymentledger/ledger/domain"
)

func TestCheckHistory(t *testing.T) {
	for status, events := range given {
		if err := domain.CheckHistory(events); err != nil {
			t.Errorf("history of %s: %v", status, err)
		}
	}
	tampered := domain.PaymentRejected{EventHeader: header(t0), Code: "AMOUNT_MISMATCH", Source: domain.SourceValidation}
	if err := domain.CheckHistory([]domain.Event{checkedOut, tampered}); err != nil {
		t.Errorf("validation rejection before confirm: %v", err)
	}
	third := started
	third.Attempt = 3
	otherAmount := approved
	otherAmount.TotalAmount = won("1")
	bad := map[string][]domain.Event{
		"does not start with a checkout": {started},
		"approval before confirm":        {checkedOut, approved},
		"two approvals":                  {checkedOut, started, approved, approved},
		"confirm after success":          {checkedOut, started, approved, started},
		"skipped attempt":                {checkedOut, started, unknown, third},
		"approval of another amount":     {checkedOut, started, otherAmount},
		"second checkout":                {checkedOut, checkedOut},
		"PSP rejection before confirm":   {checkedOut, rejected},
	}
	for name, events := range bad {
		if err := domain.CheckHistory(events); err == nil {
			t.Errorf("%s: accepted", name)
		} else if !strings.Contains(err.Error(), "event") {
			t.Errorf("%s: error %q does not say which event", name, err)
		}
	}
}
