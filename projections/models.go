package projections

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/eventstore"
)

// readModel is what a replay needs of a projection: which events it decodes, its rules over an
// in-memory store, and its tables. It adds nothing to the rules: fold calls the same apply
// function that the projection's Apply calls with its SQL store.
type readModel struct {
	proj Projection
	// decodes reports whether the projection's Apply decodes the event (and so fails on one it
	// cannot read, as a replay must too).
	decodes func(eventstore.RecordedEvent) bool
	// newFold returns an empty in-memory read model and the function that applies one decoded
	// event to it; send takes the rows of append-only tables as they pile up, chunk at a time
	// (see appendOnly).
	newFold func(send func(copyTable) error, chunk int) (memoryModel, func(context.Context, eventstore.RecordedEvent, domain.Event) error)
	// tables are the read model's tables, referenced tables before those that reference them.
	tables []tableSpec
	// lookups name the indexes, besides the unique ones, that the projection's SQL store reads
	// by: a shadow has them from the start, so that events can be applied to it (shadowDDL).
	lookups []string
	// checks are queries over the shadow (schema as %[1]s) that must return no row once it is
	// loaded: what triggers would have checked row by row had they been on during the load.
	checks []check
}

type check struct {
	what  string
	query string
}

// tableSpec says how to compare a table's rows between the live read model and a shadow
// (compare.go): rows are matched by a natural key, never by a surrogate id (ids differ between
// two builds), and compared by every column but those in omit (surrogate ids, when a row was
// written), read from the catalog when comparing, so that a column a later migration adds is
// compared too. A row that points at a journal entry (entry) is compared with the entry's event
// and kind in place of its id. from and key are SQL over alias t (and e, the entry), with the
// schema as %[1]s.
type tableSpec struct {
	name  string
	from  string
	key   string
	omit  []string
	entry bool
}

// checksum is the SQL text whose md5 stands for a row: the row of the compared columns, as
// text (several times cheaper for the server than building jsonb).
func (t tableSpec) checksum(columns []string) string {
	var parts []string
	for _, c := range columns {
		if !slices.Contains(t.omit, c) {
			parts = append(parts, "t."+ident(c))
		}
	}
	if t.entry {
		parts = append(parts, "e.event_id", "e.kind")
	}
	return "ROW(" + strings.Join(parts, ", ") + ")::text"
}

// display is the SQL of a row as people read it: jsonb of the compared columns.
func (t tableSpec) display() string {
	out := "to_jsonb(t)"
	for _, c := range t.omit {
		out += " - '" + c + "'"
	}
	if t.entry {
		out += " || jsonb_build_object('entry_event_id', e.event_id, 'entry_kind', e.kind)"
	}
	return out
}

func all(eventstore.RecordedEvent) bool { return true }

var readModels = []readModel{
	{
		proj:    PaymentOrders{},
		decodes: all,
		newFold: func(func(copyTable) error, int) (memoryModel, func(context.Context, eventstore.RecordedEvent, domain.Event) error) {
			m := newMemPaymentOrders()
			return m, func(ctx context.Context, r eventstore.RecordedEvent, e domain.Event) error {
				return applyPaymentOrders(ctx, m, r, e)
			}
		},
		tables: []tableSpec{
			{name: "payment_orders", from: `%[1]s.payment_orders t`, key: `t.order_id`},
			{name: "payment_order_lines", from: `%[1]s.payment_order_lines t`, key: `t.order_id, t.line_id`},
		},
	},
	{
		proj:    Ledger{},
		decodes: all,
		newFold: func(send func(copyTable) error, chunk int) (memoryModel, func(context.Context, eventstore.RecordedEvent, domain.Event) error) {
			m := newMemLedger(send, chunk)
			return m, func(ctx context.Context, r eventstore.RecordedEvent, e domain.Event) error {
				return applyLedger(ctx, m, r, e)
			}
		},
		tables: []tableSpec{
			{name: "ledger_commission_rates", from: `%[1]s.ledger_commission_rates t`, key: `t.merchant_id`},
			{name: "ledger_orders", from: `%[1]s.ledger_orders t`, key: `t.order_id`},
			{name: "ledger_order_lines", from: `%[1]s.ledger_order_lines t`, key: `t.order_id, t.seq`},
			// created_at is when the row was written, not a fact of the log.
			{name: "journal_entries", from: `%[1]s.journal_entries t`, key: `t.event_id, t.kind`, omit: []string{"id", "created_at"}},
			{name: "postings", from: `%[1]s.postings t JOIN %[1]s.journal_entries e ON e.id = t.entry_id`,
				key: `e.event_id, e.kind, t.account, t.line_id`, omit: []string{"id", "entry_id"}, entry: true},
			{name: "wallet_movements", from: `%[1]s.wallet_movements t JOIN %[1]s.journal_entries e ON e.id = t.entry_id`,
				key: `e.event_id, e.kind, t.seller_id, t.line_id, t.bucket`, omit: []string{"id", "entry_id"}, entry: true},
			{name: "ledger_daily_totals", from: `%[1]s.ledger_daily_totals t`, key: `t.merchant_id, t.currency, t.day`},
			{name: "ledger_account_days", from: `%[1]s.ledger_account_days t`, key: `t.merchant_id, t.currency, t.account, t.day`},
		},
		lookups: []string{"wallet_movements_tx"}, // sqlLedger.movements
		// The deferred trigger of migrations 0005 and 0008, over every entry at once.
		checks: []check{{what: "unbalanced journal entries", query: `
			SELECT e.id FROM %[1]s.journal_entries e LEFT JOIN %[1]s.postings p ON p.entry_id = e.id
			GROUP BY e.id
			HAVING count(p.id) < 2 OR sum(p.debit) <> sum(p.credit) OR bool_or(p.currency <> e.currency)
			    OR bool_or(p.merchant_id <> e.merchant_id) OR bool_or(p.occurred_at <> e.occurred_at)
			LIMIT 5`}},
	},
	{
		proj:    Merchants{},
		decodes: merchantsDecodes,
		newFold: func(func(copyTable) error, int) (memoryModel, func(context.Context, eventstore.RecordedEvent, domain.Event) error) {
			m := newMemMerchants()
			return m, func(ctx context.Context, r eventstore.RecordedEvent, e domain.Event) error {
				return applyMerchants(ctx, m, r, e)
			}
		},
		tables: []tableSpec{{name: "merchants", from: `%[1]s.merchants t`, key: `t.merchant_id`}},
	},
}

// ReplayableProjections lists the projections Replay can rebuild, by checkpoint name.
func ReplayableProjections() []string {
	names := make([]string, len(readModels))
	for i, m := range readModels {
		names[i] = m.proj.Name()
	}
	return names
}

// ErrUnknownProjection is wrapped by the error for a projection name Replay does not know.
var ErrUnknownProjection = errors.New("projections: unknown projection")

// modelsNamed returns the read models named, in ReplayableProjections order; "all" or no
// name means every one.
func modelsNamed(names []string) ([]*readModel, error) {
	if len(names) == 0 || slices.Contains(names, "all") {
		names = ReplayableProjections()
	}
	var out []*readModel
	for i := range readModels {
		if slices.Contains(names, readModels[i].proj.Name()) {
			out = append(out, &readModels[i])
		}
	}
	for _, n := range names {
		if !slices.ContainsFunc(out, func(m *readModel) bool { return m.proj.Name() == n }) {
			return nil, fmt.Errorf("%w %q: want one of %s or all", ErrUnknownProjection, n, strings.Join(ReplayableProjections(), ", "))
		}
	}
	return out, nil
}

func modelNamed(name string) (*readModel, error) {
	ms, err := modelsNamed([]string{name})
	if err != nil {
		return nil, err
	}
	if len(ms) != 1 {
		return nil, fmt.Errorf("%w %q: a shadow holds one projection", ErrUnknownProjection, name)
	}
	return ms[0], nil
}

// columnList splits a column list constant.
func columnList(cols string) []string {
	parts := strings.Split(cols, ",")
	for i, p := range parts {
		parts[i] = strings.TrimSpace(p)
	}
	return parts
}
