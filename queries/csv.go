package queries

import (
	"strconv"
	"strings"
	"time"

	"github.com/paymentledger/ledger/domain"
)

// CSVColumns is the header row of a payments export (the API's Accept: text/csv and the back
// office's export link alike, so a file reads the same wherever it came from).
var CSVColumns = []string{"orderId", "createdAt", "status", "orderName", "buyerId", "amount", "canceledAmount",
	"currency", "method", "paymentKey", "approvedAt", "needsReview"}

// CSVRecord is p's row of an export, in CSVColumns' order: times RFC 3339 in KST, amounts as
// decimals, and every cell that a spreadsheet would run as a formula neutralized.
func CSVRecord(p Payment) []string {
	approved := ""
	if p.ApprovedAt != nil {
		approved = p.ApprovedAt.In(domain.KST).Format(time.RFC3339)
	}
	rec := []string{p.OrderID, p.CreatedAt.In(domain.KST).Format(time.RFC3339), p.Status, p.OrderName, p.BuyerID,
		p.Amount.String(), p.CanceledAmount.String(), p.Currency, p.Method, p.PaymentKey, approved, strconv.FormatBool(p.NeedsReview)}
	for i, v := range rec {
		rec[i] = neutralizeFormula(v)
	}
	return rec
}

// neutralizeFormula keeps a spreadsheet from reading a cell as a formula (CSV injection, OWASP):
// a cell that starts with = + - @, a tab or a carriage return is prefixed with a single quote.
// Buyers choose order names, and a merchant's staff open exports in Excel.
func neutralizeFormula(v string) string {
	if v != "" && strings.ContainsRune("=+-@\t\r", rune(v[0])) {
		return "'" + v
	}
	return v
}
