package httpapi_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/paymentledger/ledger/internal/testenv"
)

// A bad notification URL is a 400 with a code and a message, and nothing is written: no event,
// no sealed secret.
func TestNotificationURLIsValidated(t *testing.T) {
	env := testenv.New(t, testenv.Options{})
	const target = "merchant-hooks"
	env.NewMerchant(t, target)
	path := env.API.URL + "/admin/v1/merchants/" + target + "/notifications"
	settle(t, env)
	for _, tc := range []struct {
		name, body string
		status     int
		code       string
	}{
		{"not https", `{"url":"ftp://shop.example/hooks"}`, http.StatusBadRequest, "INVALID_NOTIFICATION_URL"},
		{"relative", `{"url":"/hooks"}`, http.StatusBadRequest, "INVALID_NOTIFICATION_URL"},
		{"user info", `{"url":"https://user:pw@shop.example/hooks"}`, http.StatusBadRequest, "INVALID_NOTIFICATION_URL"},
		{"control character", `{"url":"https://shop.example/\u0007"}`, http.StatusBadRequest, "INVALID_NOTIFICATION_URL"},
		{"too long", `{"url":"https://shop.example/` + strings.Repeat("a", 2048) + `"}`, http.StatusBadRequest, "INVALID_NOTIFICATION_URL"},
		{"empty", `{"url":""}`, http.StatusBadRequest, "INVALID_NOTIFICATION_URL"},
		{"no body", ``, http.StatusBadRequest, "INVALID_REQUEST"},
		{"unknown field", `{"url":"https://shop.example/hooks","secret":"x"}`, http.StatusBadRequest, "UNKNOWN_FIELD"},
		{"rotate without a URL", "", http.StatusNotFound, "NOTIFICATION_URL_NOT_SET"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := rowCounts(t, env)
			method, url := "PUT", path
			if strings.HasPrefix(tc.name, "rotate") {
				method, url = "POST", path+"/rotate-secret"
			}
			req, err := http.NewRequest(method, url, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", bearer(testenv.AdminToken))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			res := apiResponse{status: resp.StatusCode}
			if res.body, err = io.ReadAll(resp.Body); err != nil {
				t.Fatal(err)
			}
			if res.status != tc.status {
				t.Fatalf("status %d, want %d: %s", res.status, tc.status, res.body)
			}
			e, _ := res.json(t)["error"].(map[string]any)
			if e["code"] != tc.code || e["message"] == "" {
				t.Fatalf("error %v, want code %s with a message", e, tc.code)
			}
			settle(t, env)
			after := rowCounts(t, env)
			for tbl, n := range before {
				if after[tbl] != n {
					t.Errorf("%s: %d rows, before %d", tbl, after[tbl], n)
				}
			}
		})
	}
}
