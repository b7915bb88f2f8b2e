package reconcile

import (
	"time"

	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/psp/toss"
)

// Category names what a comparison found (see the package doc).
type Category string

const (
	Matched            Category = "matched"
	MissingInternal    Category = "missing_internal"
	MissingAtPSP       Category = "missing_at_psp"
	AmountMismatch     Category = "amount_mismatch"
	StatusMismatch     Category = "status_mismatch"
	Duplicate          Category = "duplicate"
	SettlementMissing  Category = "settlement_missing"
	SettlementMismatch Category = "settlement_mismatch"
	HistoryBroken      Category = "history_broken"
)

// Categories lists every category in the order reports show them.
var Categories = []Category{Matched, MissingInternal, MissingAtPSP, AmountMismatch, StatusMismatch,
	Duplicate, SettlementMissing, SettlementMismatch, HistoryBroken}

// Resolution says what became of a difference.
type Resolution string

const (
	Applied     Resolution = "applied"      // corrected in this run from Toss's truth
	NeedsReview Resolution = "needs_review" // Toss's truth cannot resolve it, or the correction failed
	None        Resolution = "none"         // Toss's truth resolves it, but the run did not apply
)

// Actor is the metadata actor of every event reconciliation appends.
const Actor = "reconciliation"

// Difference is one thing the two sides disagree on. Ours and Toss describe each side's record
// in words ("none" when a side has none); Detail says what is wrong and, for a correction that
// failed, why.
type Difference struct {
	Merchant       domain.MerchantID `json:"merchantId"`
	Category       Category          `json:"category"`
	OrderID        string            `json:"orderId"`
	PaymentKey     string            `json:"paymentKey"`
	TransactionKey string            `json:"transactionKey"`
	Ours           string            `json:"ours"`
	Toss           string            `json:"toss"`
	Resolution     Resolution        `json:"resolution"`
	Detail         string            `json:"detail"`

	fix fix
	row *toss.Settlement // the row to record, for fixSettlement
}

// fix is how Toss's truth resolves a difference.
type fix int

const (
	fixNone       fix = iota // it cannot: needs review
	fixSync                  // read the payment back and book what it shows
	fixSettlement            // record Toss's settlement row
)

// key identifies a difference across the comparisons of one run and across runs.
func (d Difference) key() diffKey {
	return diffKey{order: d.OrderID, category: d.Category, tx: d.TransactionKey}
}

type diffKey struct {
	order    string
	category Category
	tx       string
}

// Report is what one run for one merchant found and did.
type Report struct {
	RunID      int64             `json:"runId,omitempty"` // once saved
	Merchant   domain.MerchantID `json:"merchantId"`
	From       string            `json:"from"`
	To         string            `json:"to"`
	Apply      bool              `json:"apply"`
	StartedAt  time.Time         `json:"startedAt"`
	FinishedAt time.Time         `json:"finishedAt"`
	// Payments is the number of the merchant's payment streams compared; TossTransactions and
	// TossSettlements the rows Toss listed.
	Payments         int `json:"payments"`
	TossTransactions int `json:"tossTransactions"`
	TossSettlements  int `json:"tossSettlements"`
	// Counts holds every category: matched transactions, and differences found (applied or not).
	Counts      map[Category]int `json:"counts"`
	Differences []Difference     `json:"differences"`
	Unresolved  int              `json:"unresolved"` // differences not applied
	Applied     int              `json:"applied"`
	Err         string           `json:"error,omitempty"`
	// Phases are how long each part took: "ledger" (selecting and folding our streams),
	// "transactions" and "settlements" (paging Toss), "match", "apply" and "save".
	Phases map[string]time.Duration `json:"-"`
}

func newCounts() map[Category]int {
	c := make(map[Category]int, len(Categories))
	for _, k := range Categories {
		c[k] = 0
	}
	return c
}

// Progress is reported while a run goes on: after each chunk of streams folded (Done of Total),
// after each page Toss answers (Page, Done rows so far), and once before and after applying.
type Progress struct {
	Merchant domain.MerchantID
	Phase    string // "ledger", "transactions", "settlements", "apply"
	Page     int
	Done     int
	Total    int // 0 when not known
}
