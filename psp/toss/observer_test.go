package toss

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// callLog is an observer that keeps what it is told.
type callLog struct {
	mu    sync.Mutex
	calls []CallInfo
}

func (l *callLog) observe(ci CallInfo) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, ci)
}

// only returns the single call observed, failing the test unless there is exactly one.
func (l *callLog) only(t *testing.T) CallInfo {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.calls) != 1 {
		t.Fatalf("observer called %d times, want once: %+v", len(l.calls), l.calls)
	}
	return l.calls[0]
}

func TestObserverSeesEachHTTPCall(t *testing.T) {
	encoded := base64.StdEncoding.EncodeToString([]byte(testKey + ":"))
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close() // nothing listens any more

	for _, tc := range []struct {
		name       string
		status     int
		body       []byte
		url        string // overrides the fake server's
		wantStatus int
		wantErr    bool
		wantClass  Class
	}{
		{name: "success", status: 200, body: readSample(t, "payment-done-card.json"), wantStatus: 200},
		{name: "error answer", status: 403, body: []byte(`{"code":"REJECT_CARD_PAYMENT","message":"한도초과 혹은 잔액부족으로 결제에 실패했습니다."}`),
			wantStatus: 403, wantErr: true, wantClass: ClassFinal},
		{name: "transport error", url: down.URL, wantStatus: 0, wantErr: true, wantClass: ClassUnknownOutcome},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := tc.url
			if url == "" {
				url = newFakeToss(t, tc.status, tc.body).URL
			}
			var log callLog
			_, err := newClient(t, url, WithObserver(log.observe)).GetPayment(context.Background(), "pk")

			got := log.only(t)
			wantEq(t, "Op", got.Op, "get payment")
			wantEq(t, "HTTPStatus", got.HTTPStatus, tc.wantStatus)
			if got.Duration <= 0 {
				t.Errorf("Duration = %v, want the time the call took", got.Duration)
			}
			if got.Err != err {
				t.Errorf("observed Err = %v, want the error the method returned (%v)", got.Err, err)
			}
			switch {
			case !tc.wantErr && got.Err != nil:
				t.Errorf("Err = %v, want nil", got.Err)
			case tc.wantErr && got.Err == nil:
				t.Error("Err = nil, want the call's error")
			case tc.wantErr:
				wantEq(t, "ClassOf(Err)", ClassOf(got.Err), tc.wantClass)
			}
			if s := fmt.Sprintf("%+v %#v", got, got); strings.Contains(s, testKey) || strings.Contains(s, encoded) {
				t.Errorf("secret visible in the observed call %s", s)
			}
		})
	}
}

func TestObserverNotCalledForCallsRefusedBeforeSending(t *testing.T) {
	f := newFakeToss(t, 200, readSample(t, "payment-done-card.json"))
	var log callLog
	c := newClient(t, f.URL, WithObserver(log.observe))
	_, err := c.Confirm(context.Background(), ConfirmRequest{PaymentKey: "pk", OrderID: "order-1", Amount: dec("0")}, "k")
	if !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("error %v, want ErrInvalidArgument", err)
	}
	_, err = c.Confirm(context.Background(), ConfirmRequest{PaymentKey: "pk", OrderID: "order-1", Amount: dec("1000")}, strings.Repeat("k", 301))
	if !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("error %v, want ErrInvalidArgument", err)
	}
	if len(log.calls) != 0 || f.count() != 0 {
		t.Fatalf("observer called %d times for %d requests sent, want none", len(log.calls), f.count())
	}
}
