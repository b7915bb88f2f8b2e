package projections

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"

	"github.com/paymentledger/ledger/domain"
)

// The in-memory stores a replay folds the whole log into before it bulk-loads the rows
// (replay.go). Each implements the same small store interface as the SQL store its projection's
// rules use live, with the same meaning: a plain read or write by key. They keep rows in the
// order they were created, which is the order a runner starting from position 0 writes them.
// They are not safe for concurrent use.

// copyTable is one table's rows, ready for COPY.
type copyTable struct {
	table   string
	columns []string // in the order of row's values
	n       int
	row     func(i int) []any
}

// memoryModel is a read model folded in memory.
type memoryModel interface {
	// copyTables returns the tables' rows, but those already handed to the replay's send.
	copyTables() []copyTable
}

type memPaymentOrders struct {
	byID   map[domain.OrderID]*memPaymentOrder
	orders []*memPaymentOrder
	nLines int
}

type memPaymentOrder struct {
	row   paymentOrderRow
	lines []paymentOrderLineRow
}

var _ paymentOrdersStore = (*memPaymentOrders)(nil)

func newMemPaymentOrders() *memPaymentOrders {
	return &memPaymentOrders{byID: map[domain.OrderID]*memPaymentOrder{}}
}

// get returns the stored row itself: the rules change it and then call update.
func (m *memPaymentOrders) get(_ context.Context, id domain.OrderID) (*paymentOrderRow, error) {
	if o := m.byID[id]; o != nil {
		return &o.row, nil
	}
	return nil, nil
}

func (m *memPaymentOrders) insert(_ context.Context, o *paymentOrderRow, lines []paymentOrderLineRow) error {
	if m.byID[o.OrderID] != nil {
		return nil
	}
	mo := &memPaymentOrder{row: *o, lines: lines}
	m.byID[o.OrderID] = mo
	m.orders = append(m.orders, mo)
	m.nLines += len(lines)
	return nil
}

func (m *memPaymentOrders) update(_ context.Context, o *paymentOrderRow, linesStatus bool) error {
	mo := m.byID[o.OrderID]
	if mo == nil {
		return fmt.Errorf("update payment_orders %s: no row", o.OrderID)
	}
	mo.row = *o
	if linesStatus {
		for i := range mo.lines {
			mo.lines[i].Status = o.Status
		}
	}
	return nil
}

func (m *memPaymentOrders) copyTables() []copyTable {
	lines := make([]*paymentOrderLineRow, 0, m.nLines)
	for _, o := range m.orders {
		for i := range o.lines {
			lines = append(lines, &o.lines[i])
		}
	}
	return []copyTable{
		{table: "payment_orders", columns: columnList(paymentOrderColumns), n: len(m.orders),
			row: func(i int) []any { return m.orders[i].row.values() }},
		{table: "payment_order_lines", columns: columnList(paymentOrderLineColumns), n: len(lines),
			row: func(i int) []any { return lines[i].values() }},
	}
}

// appendOnly holds rows of a table whose rows never change once written (journal entries,
// postings, wallet movements: most of the ledger's rows). With send set, every full chunk is
// handed to send (the replay COPYs it while the fold goes on) and forgotten: the fold keeps
// only what its rules read back.
type appendOnly[T any] struct {
	table   string
	columns []string
	values  func(*T) []any
	send    func(copyTable) error
	chunk   int // rows per chunk handed on
	rows    []T
}

func (a *appendOnly[T]) add(r T) error {
	if a.rows == nil {
		a.rows = make([]T, 0, a.chunk)
	}
	a.rows = append(a.rows, r)
	if a.send == nil || len(a.rows) < a.chunk {
		return nil
	}
	t := a.pending()
	a.rows = nil
	return a.send(t)
}

// pending is the rows not handed on yet.
func (a *appendOnly[T]) pending() copyTable {
	rows := a.rows
	return copyTable{table: a.table, columns: a.columns, n: len(rows), row: func(i int) []any { return a.values(&rows[i]) }}
}

type memLedger struct {
	rates     map[domain.MerchantID]*ledgerRateRow
	rateOrder []*ledgerRateRow
	orders    map[domain.OrderID]*memLedgerOrder
	orderList []*memLedgerOrder
	nLines    int
	entryIDs  map[entryKey]int64
	nEntries  int64
	nPostings int64
	nWallet   int64
	entries   appendOnly[journalEntryRow]
	postings  appendOnly[memPosting]
	wallet    appendOnly[memMovement]
	byTx      map[orderTx][]walletMovementRow // what movements reads back
	days      map[dailyKey]*dailyTotalsRow
	dayList   []*dailyTotalsRow
	accDays   map[accountDayKey]*accountDayRow
	accList   []*accountDayRow
}

type dailyKey struct {
	merchant domain.MerchantID
	currency domain.Currency
	day      string
}

type memPosting struct {
	id, entry int64
	row       postingRow
}

type memMovement struct {
	id  int64
	row walletMovementRow
}

type memLedgerOrder struct {
	row   ledgerOrderRow
	order ledgerOrder
}

type entryKey struct {
	event uuid.UUID
	kind  domain.EntryKind
}

type orderTx struct {
	order domain.OrderID
	tx    string
}

var _ ledgerStore = (*memLedger)(nil)

// newMemLedger returns an empty ledger; send, if not nil, takes the append-only tables' rows
// chunk rows at a time.
func newMemLedger(send func(copyTable) error, chunk int) *memLedger {
	return &memLedger{rates: map[domain.MerchantID]*ledgerRateRow{}, orders: map[domain.OrderID]*memLedgerOrder{},
		entryIDs: map[entryKey]int64{}, byTx: map[orderTx][]walletMovementRow{}, days: map[dailyKey]*dailyTotalsRow{},
		accDays: map[accountDayKey]*accountDayRow{},
		entries: appendOnly[journalEntryRow]{table: "journal_entries", columns: append([]string{"id"}, columnList(journalEntryColumns)...), send: send, chunk: chunk,
			values: func(e *journalEntryRow) []any { return append([]any{e.ID}, e.values()...) }},
		postings: appendOnly[memPosting]{table: "postings", columns: append([]string{"id", "entry_id"}, columnList(postingColumns)...), send: send, chunk: chunk,
			values: func(p *memPosting) []any { return append([]any{p.id, p.entry}, p.row.values()...) }},
		wallet: appendOnly[memMovement]{table: "wallet_movements", columns: append([]string{"id"}, columnList(walletMovementColumns)...), send: send, chunk: chunk,
			values: func(m *memMovement) []any { return append([]any{m.id}, m.row.values()...) }},
	}
}

func (m *memLedger) rate(_ context.Context, merchant domain.MerchantID) (decimal.Decimal, error) {
	if r := m.rates[merchant]; r != nil {
		return r.Rate, nil
	}
	return decimal.Zero, nil
}

func (m *memLedger) setRate(_ context.Context, r ledgerRateRow) error {
	if old := m.rates[r.MerchantID]; old != nil {
		*old = r
		return nil
	}
	m.rates[r.MerchantID] = &r
	m.rateOrder = append(m.rateOrder, &r)
	return nil
}

func (m *memLedger) order(_ context.Context, id domain.OrderID) (*ledgerOrder, error) {
	if o := m.orders[id]; o != nil {
		return &o.order, nil
	}
	return nil, nil
}

func (m *memLedger) insertOrder(_ context.Context, row ledgerOrderRow, lines []domain.LedgerLine) (bool, error) {
	if m.orders[row.OrderID] != nil {
		return false, nil
	}
	o := &memLedgerOrder{row: row, order: ledgerOrder{id: row.OrderID, merchant: row.MerchantID, currency: row.Currency, lines: lines}}
	m.orders[row.OrderID] = o
	m.orderList = append(m.orderList, o)
	m.nLines += len(lines)
	return true, nil
}

func (m *memLedger) updateLines(_ context.Context, id domain.OrderID, lines []domain.LedgerLine) error {
	o := m.orders[id]
	if o == nil {
		return fmt.Errorf("ledger: update lines of %s: no order", id)
	}
	for _, l := range lines {
		for i := range o.order.lines {
			if o.order.lines[i].LineID == l.LineID {
				o.order.lines[i].Canceled, o.order.lines[i].CommissionReversed = l.Canceled, l.CommissionReversed
			}
		}
	}
	return nil
}

func (m *memLedger) insertEntry(_ context.Context, e journalEntryRow, postings []postingRow) (int64, bool, error) {
	k := entryKey{e.EventID, e.Kind}
	if _, ok := m.entryIDs[k]; ok {
		return 0, false, nil
	}
	m.nEntries++
	e.ID = m.nEntries
	m.entryIDs[k] = e.ID
	if err := m.entries.add(e); err != nil {
		return 0, false, err
	}
	for _, p := range postings {
		m.nPostings++
		if err := m.postings.add(memPosting{id: m.nPostings, entry: e.ID, row: p}); err != nil {
			return 0, false, err
		}
	}
	if d, ok := dailyDelta(e, postings); ok {
		k := dailyKey{d.MerchantID, d.Currency, d.Day}
		if row := m.days[k]; row != nil {
			row.add(d)
		} else {
			m.days[k] = &d
			m.dayList = append(m.dayList, &d)
		}
	}
	for _, d := range accountDayDeltas(postings) {
		if row := m.accDays[d.key()]; row != nil {
			row.add(d)
		} else {
			m.accDays[d.key()] = &d
			m.accList = append(m.accList, &d)
		}
	}
	return e.ID, true, nil
}

func (m *memLedger) movements(_ context.Context, id domain.OrderID, txKey string) ([]walletMovementRow, error) {
	return append([]walletMovementRow(nil), m.byTx[orderTx{id, txKey}]...), nil
}

func (m *memLedger) insertMovements(_ context.Context, ms []walletMovementRow) error {
	for _, w := range ms {
		if w.TransactionKey != nil {
			k := orderTx{w.OrderID, *w.TransactionKey}
			m.byTx[k] = append(m.byTx[k], w)
		}
		m.nWallet++
		if err := m.wallet.add(memMovement{id: m.nWallet, row: w}); err != nil {
			return err
		}
	}
	return nil
}

func (m *memLedger) copyTables() []copyTable {
	type line struct {
		id  domain.OrderID
		seq int
		l   *domain.LedgerLine
	}
	lines := make([]line, 0, m.nLines)
	for _, o := range m.orderList {
		for i := range o.order.lines {
			lines = append(lines, line{o.row.OrderID, i, &o.order.lines[i]})
		}
	}
	return []copyTable{
		{table: "ledger_commission_rates", columns: columnList(ledgerRateColumns), n: len(m.rateOrder),
			row: func(i int) []any { return m.rateOrder[i].values() }},
		{table: "ledger_orders", columns: columnList(ledgerOrderColumns), n: len(m.orderList),
			row: func(i int) []any { return m.orderList[i].row.values() }},
		{table: "ledger_order_lines", columns: columnList(ledgerOrderLineColumns), n: len(lines),
			row: func(i int) []any { return ledgerOrderLineValues(lines[i].id, lines[i].seq, *lines[i].l) }},
		m.entries.pending(),
		m.postings.pending(),
		m.wallet.pending(),
		{table: "ledger_daily_totals", columns: columnList(ledgerDailyColumns), n: len(m.dayList),
			row: func(i int) []any { return m.dayList[i].values() }},
		{table: "ledger_account_days", columns: columnList(ledgerAccountDayColumns), n: len(m.accList),
			row: func(i int) []any { return m.accList[i].values() }},
	}
}

type memMerchants struct {
	byID map[domain.MerchantID]*merchantRow
	list []*merchantRow
}

var _ merchantsStore = (*memMerchants)(nil)

func newMemMerchants() *memMerchants {
	return &memMerchants{byID: map[domain.MerchantID]*merchantRow{}}
}

func (m *memMerchants) get(_ context.Context, id domain.MerchantID) (*merchantRow, error) {
	return m.byID[id], nil
}

func (m *memMerchants) insert(_ context.Context, r *merchantRow) error {
	if m.byID[r.MerchantID] != nil {
		return nil
	}
	m.byID[r.MerchantID] = r
	m.list = append(m.list, r)
	return nil
}

func (m *memMerchants) update(_ context.Context, r *merchantRow) error {
	old := m.byID[r.MerchantID]
	if old == nil {
		return fmt.Errorf("update merchants %s: no row", r.MerchantID)
	}
	*old = *r
	return nil
}

func (m *memMerchants) copyTables() []copyTable {
	return []copyTable{{table: "merchants", columns: columnList(merchantColumns), n: len(m.list),
		row: func(i int) []any { return m.list[i].values() }}}
}
