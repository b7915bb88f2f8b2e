package projections

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"

	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/internal/pgtest"
)

// TestCopyEncodesAsPgx: the replay's binary COPY stores what pgx stores for the same Go values
// bound as parameters (the runner's path), to the display scale of every numeric.
func TestCopyEncodesAsPgx(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	if _, err := pool.Exec(ctx, `CREATE TABLE via_pgx (i int, t text, n numeric, ts timestamptz, u uuid, b bool, s int4, l int8, d date);
		CREATE TABLE via_copy (LIKE via_pgx)`); err != nil {
		t.Fatal(err)
	}
	d := decimal.RequireFromString
	kst := time.FixedZone("KST", 9*3600)
	numerics := []decimal.Decimal{decimal.Zero, d("0.5"), d("-0.5"), d("1000"), d("1000.00"), d("-1234.5678"), d("0.0001"), d("0.00001"),
		d("12345678901234567890.123"), d("-98765432109876543210987654321"), decimal.New(5, 3), decimal.New(-7, 9), d("99999999.99990000"),
		d("10000").Sub(d("0.10")), d("3333").Mul(d("0.1")).RoundFloor(0), d("1e-20")}
	times := []time.Time{{}, time.Date(2026, 11, 21, 23, 59, 59, 999999999, kst), time.Date(1900, 1, 1, 0, 0, 0, 123456789, time.UTC),
		time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), time.Now()}
	var rows [][]any
	for i, n := range numerics {
		var text *string
		if i%3 != 0 {
			text = ptr("주문 " + n.String() + "\t\\\n'")
		}
		var ts *time.Time
		if i%4 != 0 {
			ts = &times[i%len(times)]
		}
		var day *time.Time
		if i%5 != 0 { // a calendar day in the time's own location, 1900 and 0001 included
			day = &times[(i+1)%len(times)]
		}
		rows = append(rows, []any{i, text, n, ts, uuid.New(), i%2 == 0, int64(-2147483648 + i), int64(9223372036854775807 - i), day})
	}
	rows = append(rows, []any{len(rows), domain.OrderID("order-1"), decimal.NewFromInt(-1), times[0], uuid.Nil, true, 2147483647, -9223372036854775808, time.Date(2026, 11, 3, 0, 0, 0, 0, time.UTC)})
	for _, r := range rows {
		if _, err := pool.Exec(ctx, `INSERT INTO via_pgx VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, r...); err != nil {
			t.Fatal(err)
		}
	}
	table := copyTable{table: "via_copy", columns: []string{"i", "t", "n", "ts", "u", "b", "s", "l", "d"}, n: len(rows), row: func(i int) []any { return rows[i] }}
	enc, err := columnEncoders(ctx, pool, "public", "via_copy", table.columns)
	if err != nil {
		t.Fatal(err)
	}
	if err := copyIn(ctx, pool, "public", table, enc, 0, len(rows)); err != nil {
		t.Fatal(err)
	}
	qrows, err := pool.Query(ctx, `SELECT p.i, row(p.*)::text, row(c.*)::text, scale(p.n), scale(c.n) FROM via_pgx p FULL JOIN via_copy c USING (i)
		WHERE row(p.*)::text IS DISTINCT FROM row(c.*)::text OR scale(p.n) IS DISTINCT FROM scale(c.n) OR p.n <> c.n`)
	if err != nil {
		t.Fatal(err)
	}
	var (
		i               *int
		viaPgx, viaCopy *string
		sp, sc          *int
	)
	if _, err := pgx.ForEachRow(qrows, []any{&i, &viaPgx, &viaCopy, &sp, &sc}, func() error {
		t.Errorf("row %v: pgx %v, COPY %v (scales %v, %v)", deref(i), deref(viaPgx), deref(viaCopy), deref(sp), deref(sc))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM via_copy`).Scan(&n); err != nil || n != len(rows) {
		t.Fatalf("%d rows copied (%v), want %d", n, err, len(rows))
	}
	// A value of a type the column cannot take is an error, not a guess.
	bad := copyTable{table: "via_copy", columns: []string{"s"}, n: 1, row: func(int) []any { return []any{"x"} }}
	encS, err := columnEncoders(ctx, pool, "public", "via_copy", bad.columns)
	if err != nil {
		t.Fatal(err)
	}
	if err := copyIn(ctx, pool, "public", bad, encS, 0, 1); err == nil {
		t.Fatal("a string copied into an int4 column")
	}
}
