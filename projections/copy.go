package projections

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/big"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"
)

// The replay's bulk load writes PostgreSQL's binary COPY format itself. pgx.CopyFrom encodes
// every value through its type map (a plan lookup per value; numerics through big.Int
// division), which took most of the replay's CPU; these encoders take the rows' values (the
// same values() the SQL stores bind as parameters) and write exactly what pgx's binary
// encoders write for them: the same value, and for numerics the same display scale
// (pgx-shopspring-decimal: the decimal's exponent), so that the shadow's rows are the live
// rows byte for byte. copy_test.go holds them to that against pgx.

// copyHeader opens a binary COPY stream: the signature, no flags, no header extension.
var copyHeader = []byte("PGCOPY\n\xff\r\n\x00\x00\x00\x00\x00\x00\x00\x00\x00")

// encodeValue appends one field (length and bytes) for a value bound to a column of type oid.
type encodeValue func(buf []byte, v any) ([]byte, error)

// columnEncoders returns an encoder for each column of the table, by the column's type.
func columnEncoders(ctx context.Context, q querier, schema, table string, columns []string) ([]encodeValue, error) {
	out := make([]encodeValue, len(columns))
	for i, c := range columns {
		var oid uint32
		if err := q.QueryRow(ctx, `SELECT atttypid FROM pg_attribute WHERE attrelid = ($1 || '.' || $2)::regclass AND attname = $3 AND NOT attisdropped`,
			ident(schema), ident(table), c).Scan(&oid); err != nil {
			return nil, fmt.Errorf("column %s.%s: %w", table, c, err)
		}
		enc, ok := encoders[oid]
		if !ok {
			return nil, fmt.Errorf("column %s.%s: no binary COPY encoder for type oid %d", table, c, oid)
		}
		out[i] = enc
	}
	return out, nil
}

var encoders = map[uint32]encodeValue{
	pgtype.TextOID:        encodeText,
	pgtype.Int4OID:        encodeInt(4),
	pgtype.Int8OID:        encodeInt(8),
	pgtype.BoolOID:        encodeBool,
	pgtype.NumericOID:     encodeNumeric,
	pgtype.TimestamptzOID: encodeTimestamptz,
	pgtype.DateOID:        encodeDate,
	pgtype.UUIDOID:        encodeUUID,
}

func appendNull(buf []byte) []byte { return binary.BigEndian.AppendUint32(buf, 0xffffffff) }

// deref returns the value a pointer points at, or nil for a nil pointer.
func deref(v any) any {
	switch p := v.(type) {
	case *string:
		if p == nil {
			return nil
		}
		return *p
	case *time.Time:
		if p == nil {
			return nil
		}
		return *p
	}
	return v
}

func unsupported(v any, what string) error {
	return fmt.Errorf("cannot COPY a %T into a %s column", v, what)
}

func encodeText(buf []byte, v any) ([]byte, error) {
	var s string
	switch x := deref(v).(type) {
	case nil:
		return appendNull(buf), nil
	case string:
		s = x
	default:
		rv := reflect.ValueOf(x)
		if rv.Kind() != reflect.String {
			return nil, unsupported(v, "text")
		}
		s = rv.String()
	}
	buf = binary.BigEndian.AppendUint32(buf, uint32(len(s)))
	return append(buf, s...), nil
}

func encodeInt(size int) encodeValue {
	return func(buf []byte, v any) ([]byte, error) {
		var n int64
		switch x := v.(type) {
		case int:
			n = int64(x)
		case int32:
			n = int64(x)
		case int64:
			n = x
		default:
			return nil, unsupported(v, "integer")
		}
		buf = binary.BigEndian.AppendUint32(buf, uint32(size))
		if size == 4 {
			if int64(int32(n)) != n {
				return nil, fmt.Errorf("%d does not fit an integer column", n)
			}
			return binary.BigEndian.AppendUint32(buf, uint32(n)), nil
		}
		return binary.BigEndian.AppendUint64(buf, uint64(n)), nil
	}
}

func encodeBool(buf []byte, v any) ([]byte, error) {
	b, ok := v.(bool)
	if !ok {
		return nil, unsupported(v, "boolean")
	}
	buf = binary.BigEndian.AppendUint32(buf, 1)
	if b {
		return append(buf, 1), nil
	}
	return append(buf, 0), nil
}

func encodeUUID(buf []byte, v any) ([]byte, error) {
	u, ok := v.(uuid.UUID)
	if !ok {
		return nil, unsupported(v, "uuid")
	}
	buf = binary.BigEndian.AppendUint32(buf, 16)
	return append(buf, u[:]...), nil
}

// microsecFromUnixEpochToY2K is where PostgreSQL's timestamps count from.
const microsecFromUnixEpochToY2K = 946684800 * 1000000

func encodeTimestamptz(buf []byte, v any) ([]byte, error) {
	switch t := deref(v).(type) {
	case nil:
		return appendNull(buf), nil
	case time.Time:
		buf = binary.BigEndian.AppendUint32(buf, 8)
		// As pgx: microseconds, the nanoseconds below them dropped.
		return binary.BigEndian.AppendUint64(buf, uint64(t.Unix()*1000000+int64(t.Nanosecond())/1000-microsecFromUnixEpochToY2K)), nil
	}
	return nil, unsupported(v, "timestamptz")
}

// encodeDate writes a time's calendar day in its own location as a date, as pgx does: days
// since 2000-01-01.
func encodeDate(buf []byte, v any) ([]byte, error) {
	switch t := deref(v).(type) {
	case nil:
		return appendNull(buf), nil
	case time.Time:
		day := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
		buf = binary.BigEndian.AppendUint32(buf, 4)
		return binary.BigEndian.AppendUint32(buf, uint32(int32((day.Unix()-dateEpoch)/86400))), nil
	}
	return nil, unsupported(v, "date")
}

// dateEpoch is where PostgreSQL's dates count from, in Unix seconds.
const dateEpoch = 946684800

// encodeNumeric writes a decimal as a numeric: the value in base-10000 digits around the
// decimal point, and as display scale the decimal's own number of decimal places (0 for a
// positive exponent), as pgx does.
func encodeNumeric(buf []byte, v any) ([]byte, error) {
	d, ok := v.(decimal.Decimal)
	if !ok {
		return nil, unsupported(v, "numeric")
	}
	exp := int(d.Exponent())
	var digits []byte
	neg := d.Sign() < 0
	if d.NumDigits() <= 18 {
		c := d.CoefficientInt64()
		if c < 0 {
			c = -c
		}
		digits = strconv.AppendInt(make([]byte, 0, 24), c, 10)
	} else {
		digits = new(big.Int).Abs(d.Coefficient()).Append(make([]byte, 0, 48), 10)
	}
	dscale := 0
	var whole, frac []byte
	if exp >= 0 {
		whole = append(digits, strings.Repeat("0", exp)...)
	} else {
		dscale = -exp
		if len(digits) <= dscale {
			digits = append([]byte(strings.Repeat("0", dscale-len(digits)+1)), digits...)
		}
		whole, frac = digits[:len(digits)-dscale], digits[len(digits)-dscale:]
	}
	if dscale > 0x3fff {
		return nil, fmt.Errorf("numeric %s: scale %d out of range", d, dscale)
	}
	// Whole digits padded on the left and fraction digits on the right to groups of four.
	padded := make([]byte, 0, len(whole)+len(frac)+8)
	padded = append(padded, strings.Repeat("0", (4-len(whole)%4)%4)...)
	padded = append(padded, whole...)
	wholeGroups := len(padded) / 4
	padded = append(padded, frac...)
	padded = append(padded, strings.Repeat("0", (4-len(frac)%4)%4)...)
	groups := make([]uint16, 0, len(padded)/4)
	for i := 0; i < len(padded); i += 4 {
		g := uint16(0)
		for _, c := range padded[i : i+4] {
			g = g*10 + uint16(c-'0')
		}
		groups = append(groups, g)
	}
	weight := wholeGroups - 1
	for len(groups) > 0 && groups[0] == 0 {
		groups, weight = groups[1:], weight-1
	}
	for len(groups) > 0 && groups[len(groups)-1] == 0 {
		groups = groups[:len(groups)-1]
	}
	sign := uint16(0)
	if len(groups) == 0 {
		weight = 0
	} else if neg {
		sign = 0x4000
	}
	if weight > 0x7fff || weight < -0x8000 {
		return nil, fmt.Errorf("numeric %s out of range", d)
	}
	buf = binary.BigEndian.AppendUint32(buf, uint32(8+2*len(groups)))
	buf = binary.BigEndian.AppendUint16(buf, uint16(len(groups)))
	buf = binary.BigEndian.AppendUint16(buf, uint16(int16(weight)))
	buf = binary.BigEndian.AppendUint16(buf, sign)
	buf = binary.BigEndian.AppendUint16(buf, uint16(dscale))
	for _, g := range groups {
		buf = binary.BigEndian.AppendUint16(buf, g)
	}
	return buf, nil
}

// copyIn loads rows [from, to) of t into schema.t in one transaction (asynchronous commit: a
// shadow lost in a crash is replayed again). Encoding and the server's parsing overlap through
// a pipe.
func copyIn(ctx context.Context, pool *pgxpool.Pool, schema string, t copyTable, enc []encodeValue, from, to int) error {
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL synchronous_commit = off`); err != nil {
			return err
		}
		cols := make([]string, len(t.columns))
		for i, c := range t.columns {
			cols[i] = ident(c)
		}
		pr, pw := io.Pipe()
		go func() { pw.CloseWithError(writeCopy(pw, t, enc, from, to)) }()
		_, err := tx.Conn().PgConn().CopyFrom(ctx, pr,
			`COPY `+ident(schema, t.table)+` (`+strings.Join(cols, ", ")+`) FROM STDIN WITH (FORMAT binary)`)
		// Unblocks the writer if the server stopped reading.
		pr.CloseWithError(errors.Join(err, errCopyDone))
		return err
	})
}

var errCopyDone = errors.New("copy ended")

func writeCopy(w io.Writer, t copyTable, enc []encodeValue, from, to int) error {
	bw := bufio.NewWriterSize(w, 256<<10)
	if _, err := bw.Write(copyHeader); err != nil {
		return err
	}
	buf := make([]byte, 0, 1024)
	for i := from; i < to; i++ {
		vals := t.row(i)
		if len(vals) != len(enc) {
			return fmt.Errorf("%s row %d: %d values for %d columns", t.table, i, len(vals), len(enc))
		}
		buf = binary.BigEndian.AppendUint16(buf[:0], uint16(len(vals)))
		for j, v := range vals {
			var err error
			if buf, err = enc[j](buf, v); err != nil {
				return fmt.Errorf("%s row %d column %s: %w", t.table, i, t.columns[j], err)
			}
		}
		if _, err := bw.Write(buf); err != nil {
			return err
		}
	}
	if _, err := bw.Write([]byte{0xff, 0xff}); err != nil {
		return err
	}
	return bw.Flush()
}
