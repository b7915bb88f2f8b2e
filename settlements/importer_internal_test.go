package settlements

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/psp/toss"
)

// pagedLister serves n rows in pages as Toss does; repeat makes it ignore page.
type pagedLister struct {
	n      int
	repeat bool
	pages  []int
}

func (l *pagedLister) ListSettlements(_ context.Context, q toss.SettlementsQuery) ([]toss.Settlement, error) {
	l.pages = append(l.pages, q.Page)
	page := q.Page
	if l.repeat {
		page = 1
	}
	var out []toss.Settlement
	for i := (page - 1) * q.Size; i < min(page*q.Size, l.n); i++ {
		out = append(out, toss.Settlement{TransactionKey: fmt.Sprintf("TX%05d", i), OrderID: fmt.Sprintf("order-%05d", i), Amount: decimal.NewFromInt(1000)})
	}
	return out, nil
}

// mapRecorder answers from a fixed table: "new", "dup", "unknown", "refused" or "store".
type mapRecorder map[string]string

func (m mapRecorder) RecordSettlement(_ context.Context, _ domain.MerchantID, row toss.Settlement) (bool, error) {
	switch m[row.TransactionKey] {
	case "dup":
		return false, nil
	case "unknown":
		return false, domain.Errorf(domain.ErrPaymentNotFound, "no payment with orderId %s", row.OrderID)
	case "refused":
		return false, domain.Errorf(domain.ErrIllegalTransition, "not approved")
	case "store":
		return false, errors.New("connection refused")
	}
	return true, nil
}

func TestImportPagesUntilAShortPage(t *testing.T) {
	l := &pagedLister{n: 2*PageSize + 3}
	rec := mapRecorder{"TX00001": "dup", "TX00500": "unknown", "TX01002": "refused"}
	var seen []int
	sum, err := NewImporter(l, rec, "m-1", nil).Import(context.Background(), "2026-11-01", "2026-11-21", func(p Progress) { seen = append(seen, p.PageRows) })
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(l.pages) != "[1 2 3]" || fmt.Sprint(seen) != fmt.Sprintf("[%d %d 3]", PageSize, PageSize) {
		t.Fatalf("pages asked %v, progress %v", l.pages, seen)
	}
	want := Summary{From: "2026-11-01", To: "2026-11-21", Pages: 3, Rows: 2*PageSize + 3, Recorded: 2 * PageSize, AlreadyRecorded: 1, UnknownOrders: 1, Errors: 1}
	got := sum
	got.Problems = nil
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("summary %+v, want %+v", got, want)
	}
	if len(sum.Problems) != 2 || sum.Problems[0].TransactionKey != "TX00500" || sum.Problems[1].TransactionKey != "TX01002" {
		t.Fatalf("problems %+v", sum.Problems)
	}
}

func TestImportStopsOnStoreErrorsAndRepeatedPages(t *testing.T) {
	sum, err := NewImporter(&pagedLister{n: 10}, mapRecorder{"TX00004": "store"}, "m-1", nil).Import(context.Background(), "2026-11-01", "2026-11-01", nil)
	if err == nil || sum.Recorded != 4 || sum.Rows != 4 {
		t.Fatalf("store failure: %+v %v, want a stop after 4 rows", sum, err)
	}
	_, err = NewImporter(&pagedLister{n: PageSize + 1, repeat: true}, mapRecorder{}, "m-1", nil).Import(context.Background(), "2026-11-01", "2026-11-01", nil)
	if err == nil {
		t.Fatal("a server that ignores page must not loop forever")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := NewImporter(&pagedLister{n: 3}, cancelledRecorder{}, "m-1", nil).Import(ctx, "2026-11-01", "2026-11-01", nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
}

type cancelledRecorder struct{}

func (cancelledRecorder) RecordSettlement(ctx context.Context, _ domain.MerchantID, _ toss.Settlement) (bool, error) {
	return false, ctx.Err()
}
