package audit

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/paymentledger/ledger/projections"
)

// ReplayDrift is the DriftChecker of `paymentctl audit`: it replays every projection into
// shadow schemas, compares each with its live read model (projections.Verify) and drops the
// shadows. Each differing row is a KindProjectionDrift problem naming the table and the row's
// key, up to Limit rows per table; the rest of a table's differing rows are counted in one more
// problem. The replay writes only its shadow schemas.
type ReplayDrift struct {
	Pool *pgxpool.Pool
	// Limit is the differing rows reported per table. Default 20.
	Limit int
	// Progress, when set, is given the replay's progress.
	Progress func(projections.ReplayProgress)
}

var _ DriftChecker = ReplayDrift{}

// Drift implements DriftChecker.
func (d ReplayDrift) Drift(ctx context.Context) ([]Problem, error) {
	limit := d.Limit
	if limit <= 0 {
		limit = 20
	}
	comparisons, err := projections.Verify(ctx, d.Pool, nil, projections.VerifyOptions{
		Limit:  limit,
		Replay: projections.ReplayOptions{Progress: d.Progress},
	})
	if err != nil {
		return nil, err
	}
	var out []Problem
	for _, c := range comparisons {
		for _, t := range c.Tables {
			for _, diff := range t.Differences {
				out = append(out, Problem{Kind: KindProjectionDrift, Detail: driftDetail(c.Projection, diff)})
			}
			if more := t.Differing - int64(len(t.Differences)); more > 0 {
				out = append(out, Problem{Kind: KindProjectionDrift, Detail: fmt.Sprintf(
					"%s: %s: %d more rows differ from the replay (paymentctl replay --projection %s lists them)", c.Projection, t.Table, more, c.Projection)})
			}
		}
	}
	return out, nil
}

func driftDetail(projection string, d projections.Difference) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s row %s ", projection, d.Table, d.Key)
	switch {
	case d.Live == "":
		fmt.Fprintf(&b, "is missing from the live table; the replay has %s", d.Shadow)
	case d.Shadow == "":
		fmt.Fprintf(&b, "is not in the replay; the live table has %s", d.Live)
	default:
		fmt.Fprintf(&b, "differs in %s: live %s, replay %s", strings.Join(d.Columns, ", "), d.Live, d.Shadow)
	}
	return b.String()
}
