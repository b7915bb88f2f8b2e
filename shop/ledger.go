package shop

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// ledgerClient calls the ledger's merchant API (/api/v1) with the shop's API key, as a
// merchant's backend does. It is the only place the key is used.
type ledgerClient struct {
	base    string // no trailing slash
	apiKey  string
	http    *http.Client
	timeout time.Duration
}

// ledgerError is an error answer of the ledger ({"error":{"code","message"}}) with its status.
type ledgerError struct {
	Status  int
	Code    string
	Message string
}

func (e *ledgerError) Error() string {
	return fmt.Sprintf("ledger: %d %s: %s", e.Status, e.Code, e.Message)
}

// checkoutLine, checkoutBody and the answers below are the ledger API's wire shapes
// (README "API"); amounts are decimal strings.
type checkoutLine struct {
	SellerID  string `json:"sellerId"`
	ProductID string `json:"productId"`
	Amount    string `json:"amount"`
}

type checkoutBody struct {
	OrderName string         `json:"orderName"`
	BuyerID   string         `json:"buyerId"`
	Lines     []checkoutLine `json:"lines"`
}

type checkoutAnswer struct {
	OrderID   string `json:"orderId"`
	OrderName string `json:"orderName"`
	Amount    string `json:"amount"`
	Currency  string `json:"currency"`
	Status    string `json:"status"`
}

type confirmBody struct {
	PaymentKey string `json:"paymentKey"`
	OrderID    string `json:"orderId"`
	Amount     string `json:"amount"`
}

type failure struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

type confirmAnswer struct {
	OrderID    string   `json:"orderId"`
	Status     string   `json:"status"`
	ApprovedAt string   `json:"approvedAt,omitempty"`
	Failure    *failure `json:"failure,omitempty"`
}

// paymentAnswer is the part of GET /api/v1/payments/{orderId} the shop shows.
type paymentAnswer struct {
	OrderID    string    `json:"orderId"`
	OrderName  string    `json:"orderName"`
	Amount     string    `json:"amount"`
	Status     string    `json:"status"`
	ApprovedAt string    `json:"approvedAt,omitempty"`
	Failure    *failure  `json:"failure,omitempty"`
	CreatedAt  time.Time `json:"createdAt"`
	ExpiresAt  time.Time `json:"expiresAt"`
}

func (c *ledgerClient) checkout(ctx context.Context, body checkoutBody) (checkoutAnswer, error) {
	var out checkoutAnswer
	err := c.call(ctx, http.MethodPost, "/api/v1/payments/checkout", body, &out)
	return out, err
}

func (c *ledgerClient) confirm(ctx context.Context, body confirmBody) (confirmAnswer, error) {
	var out confirmAnswer
	err := c.call(ctx, http.MethodPost, "/api/v1/payments/confirm", body, &out)
	return out, err
}

func (c *ledgerClient) payment(ctx context.Context, orderID string) (paymentAnswer, error) {
	var out paymentAnswer
	err := c.call(ctx, http.MethodGet, "/api/v1/payments/"+url.PathEscape(orderID), nil, &out)
	return out, err
}

// call sends one JSON request within c.timeout and decodes a 2xx answer into out; any other
// answer is a *ledgerError.
func (c *ledgerClient) call(ctx context.Context, method, path string, body, out any) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(raw)
	}
	resp, err := c.send(ctx, method, path, rd, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return fmt.Errorf("ledger %s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		return decodeLedgerError(resp.StatusCode, raw)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("ledger %s %s: %w", method, path, err)
	}
	return nil
}

// send sends a request with the API key; the caller closes the body.
func (c *ledgerClient) send(ctx context.Context, method, path string, body io.Reader, header http.Header) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Authorization", "Bearer "+c.apiKey)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		// The URL holds no secret, but the error is only ever logged.
		return nil, fmt.Errorf("ledger %s %s: %w", method, path, err)
	}
	return resp, nil
}

func decodeLedgerError(status int, raw []byte) error {
	var e struct {
		Error failure `json:"error"`
	}
	if json.Unmarshal(raw, &e) != nil || e.Error.Code == "" {
		e.Error = failure{Code: "HTTP_" + fmt.Sprint(status), Message: strings.TrimSpace(string(raw[:min(len(raw), 200)]))}
	}
	return &ledgerError{Status: status, Code: e.Error.Code, Message: e.Error.Message}
}

// buyerFacing turns a failed ledger call into what the browser may see: the ledger's 4xx
// refusals (an amount mismatch, an unknown order) pass through with their code and message;
// the shop's own trouble (a key the ledger refuses, a rate limit, the ledger down) becomes a
// plain 502 or 503, and the details go to the log only.
func buyerFacing(err error) (int, failure) {
	var le *ledgerError
	if errors.As(err, &le) {
		switch {
		case le.Status == http.StatusTooManyRequests:
			return http.StatusServiceUnavailable, failure{"SHOP_BUSY", "The shop is busy; try again in a moment."}
		case le.Status == http.StatusUnauthorized || le.Status == http.StatusForbidden:
			return http.StatusBadGateway, failure{"SHOP_UNAVAILABLE", "The shop cannot take payments right now."}
		case le.Status >= 400 && le.Status < 500:
			return le.Status, failure{le.Code, le.Message}
		}
	}
	return http.StatusBadGateway, failure{"SHOP_UNAVAILABLE", "The shop cannot take payments right now."}
}
