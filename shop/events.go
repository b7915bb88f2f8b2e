package shop

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// The status stream the browser watches: GET /shop/api/orders/{orderId}/events reads the
// ledger's GET /api/v1/payments/{orderId}/events with the shop's key and passes on, for each
// event, only what a buyer's page needs:
//
//	event: status
//	id: <the ledger's event id: the payment's version>
//	data: {"orderId","status","event"?,"approvedAt"?,"failure"?}
//
// The id is the ledger's, so an EventSource that reconnects with Last-Event-ID resumes where
// it was; retry lines and heartbeats pass as they are.

const (
	eventsWriteTimeout = 10 * time.Second
	maxEventLine       = 4 << 20 // a payment's first event carries its whole history
)

var lastEventIDPattern = regexp.MustCompile(`^[0-9]{1,18}$`)

// statusEvent is what the shop sends for each ledger event.
type statusEvent struct {
	OrderID    string   `json:"orderId"`
	Status     string   `json:"status"`
	Event      string   `json:"event,omitempty"` // the ledger's event type; empty for the first, "payment"
	ApprovedAt string   `json:"approvedAt,omitempty"`
	Failure    *failure `json:"failure,omitempty"`
}

func (h *Handler) apiEvents(w http.ResponseWriter, r *http.Request) {
	orderID := r.PathValue("orderId")
	if !orderIDPattern.MatchString(orderID) {
		writeJSONError(w, http.StatusNotFound, failure{"NOT_FOUND", "There is no such order."})
		return
	}
	header := http.Header{"Accept": {"text/event-stream"}}
	if last := r.Header.Get("Last-Event-ID"); last != "" {
		if !lastEventIDPattern.MatchString(last) {
			writeJSONError(w, http.StatusBadRequest, failure{"INVALID_LAST_EVENT_ID", "Last-Event-ID must be a whole number."})
			return
		}
		header.Set("Last-Event-ID", last)
	}
	// No timeout but the buyer's: the stream ends when the page goes away (r's context).
	resp, err := h.ledger.send(r.Context(), http.MethodGet, "/api/v1/payments/"+url.PathEscape(orderID)+"/events", nil, header)
	if err != nil {
		h.ledgerFailed(w, r, "events", err)
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		raw := make([]byte, 4096)
		n, _ := resp.Body.Read(raw)
		h.ledgerFailed(w, r, "events", decodeLedgerError(resp.StatusCode, raw[:n]))
		return
	}

	rc := http.NewResponseController(w)
	// The server's ReadTimeout would end the request's context mid-stream, as in httpapi.
	_ = rc.SetReadDeadline(time.Time{})
	out := w.Header()
	out.Set("Content-Type", "text/event-stream")
	out.Set("Cache-Control", "no-cache")
	out.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	send := func(text string) error {
		if err := rc.SetWriteDeadline(time.Now().Add(eventsWriteTimeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
			return err
		}
		if _, err := w.Write([]byte(text)); err != nil {
			return err
		}
		return rc.Flush()
	}
	if err := relayEvents(resp, orderID, send); err != nil && r.Context().Err() == nil {
		h.log.WarnContext(r.Context(), "shop: status stream ended", "orderId", orderID, "error", err)
	}
}

// relayEvents reads the ledger's stream and sends the buyer's, until either side ends.
func relayEvents(resp *http.Response, orderID string, send func(string) error) error {
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), maxEventLine)
	var id, data string
	for sc.Scan() {
		line := sc.Text()
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch {
		case line == "":
			if data == "" {
				continue
			}
			text, ok := translateEvent(orderID, id, data)
			id, data = "", ""
			if !ok {
				continue
			}
			if err := send(text); err != nil {
				return err
			}
		case field == "": // a comment: the heartbeat
			if err := send(": ping\n\n"); err != nil {
				return err
			}
		case field == "retry":
			if lastEventIDPattern.MatchString(value) {
				if err := send("retry: " + value + "\n\n"); err != nil {
					return err
				}
			}
		case field == "id":
			id = value
		case field == "data":
			data += value
		}
	}
	return sc.Err()
}

// translateEvent turns one ledger event into the buyer's status event; events that carry no
// status are skipped.
func translateEvent(orderID, id, data string) (string, bool) {
	var in struct {
		Status     string   `json:"status"`
		ApprovedAt string   `json:"approvedAt"`
		Failure    *failure `json:"failure"`
		Event      *struct {
			Type string `json:"type"`
		} `json:"event"`
	}
	if json.Unmarshal([]byte(data), &in) != nil || in.Status == "" {
		return "", false
	}
	ev := statusEvent{OrderID: orderID, Status: in.Status, ApprovedAt: in.ApprovedAt, Failure: in.Failure}
	if in.Event != nil {
		ev.Event = in.Event.Type
	}
	raw, err := json.Marshal(ev)
	if err != nil {
		return "", false
	}
	var b strings.Builder
	b.WriteString("event: status\n")
	if lastEventIDPattern.MatchString(id) {
		fmt.Fprintf(&b, "id: %s\n", id)
	}
	fmt.Fprintf(&b, "data: %s\n\n", raw)
	return b.String(), true
}
