package httpapi_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/paymentledger/ledger/internal/testenv"
)

// TestDailyReportRoute: every day of the range with amounts as strings and the totals; bad or
// missing dates and ranges over 366 days are 400 with a code and a message naming the problem.
// The figures themselves are queries.TestDailyReport's.
func TestDailyReportRoute(t *testing.T) {
	env := newEnv(t, testenv.Options{})
	status, body := call(t, "GET", env.API.URL+"/api/v1/reports/daily?from=2026-11-01&to=2026-11-30", "")
	if status != http.StatusOK {
		t.Fatalf("report: %d %v", status, body)
	}
	days := body["days"].([]any)
	if len(days) != 30 {
		t.Fatalf("%d days, want 30", len(days))
	}
	first, last := days[0].(map[string]any), days[29].(map[string]any)
	if first["day"] != "2026-11-01" || last["day"] != "2026-11-30" || first["approvedAmount"] != "0" || first["approvedCount"] != 0.0 || first["pspFees"] != "0" {
		t.Errorf("days: first %v, last %v", first, last)
	}
	if tot := body["totals"].(map[string]any); tot["netAmount"] != "0" || tot["canceledCount"] != 0.0 {
		t.Errorf("totals: %v", tot)
	}
	for params, want := range map[string]string{
		"":                              "from is required",
		"from=2026-11-01":               "to is required",
		"from=2026-11-1&to=2026-11-30":  "from must be a date",
		"from=2026-11-01&to=30.11.2026": "to must be a date",
		"from=2026-11-02&to=2026-11-01": "must not be after",
		"from=2025-10-31&to=2026-11-01": "366 days",
		"from=2026-11-01T00:00:00%2B09:00&to=2026-11-02": "from must be a date",
		"from=x&to=y": `from must be a date such as 2026-12-01 (KST), got "x"; to must be a date`, // both at once
	} {
		status, body := call(t, "GET", env.API.URL+"/api/v1/reports/daily?"+params, "")
		e, _ := body["error"].(map[string]any)
		msg, _ := e["message"].(string)
		if status != http.StatusBadRequest || e["code"] != "INVALID_REQUEST" || !strings.Contains(msg, want) {
			t.Errorf("?%s: %d %v, want 400 INVALID_REQUEST saying %q", params, status, body["error"], want)
		}
	}
}
