package notify

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"time"
)

// Headers of a delivery.
const (
	HeaderEventID   = "Ledger-Event-Id"
	HeaderEventType = "Ledger-Event-Type"
	HeaderAttempt   = "Ledger-Delivery-Attempt"
	HeaderSignature = "Ledger-Signature"
)

// Sign is the Ledger-Signature of body sent at t: "t=<unix seconds>" and one ",v1=<hex
// HMAC-SHA256(secret, "<t>.<body>")>" per secret (two during a rotation's grace, the current
// secret first). The key is the secret as shown to the merchant, whsec_ prefix included.
func Sign(secrets [][]byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	var b strings.Builder
	b.WriteString("t=" + ts)
	for _, s := range secrets {
		mac := hmac.New(sha256.New, s)
		mac.Write([]byte(ts + "."))
		mac.Write(body)
		b.WriteString(",v1=" + hex.EncodeToString(mac.Sum(nil)))
	}
	return b.String()
}
