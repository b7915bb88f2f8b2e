package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/paymentledger/ledger/audit"
	"github.com/paymentledger/ledger/eventstore"
	"github.com/paymentledger/ledger/internal/db"
	"github.com/paymentledger/ledger/projections"
)

// replayCommand is paymentctl replay: rebuild read models from position 0 into shadow schemas,
// compare them with the live ones, and with --swap put them live (projections/replay.go and
// projections/compare.go say how).
func (o *operator) replayCommand() *cobra.Command {
	var projection string
	var swap, keep bool
	var limit int
	names := strings.Join(projections.ReplayableProjections(), ", ")
	c := &cobra.Command{
		Use:   "replay [--projection NAME|all] [--swap] [--keep] [--limit N]",
		Short: "Rebuild read models from the event log into shadow tables, compare them with the live ones, optionally swap them in",
		Long: `Rebuild read models from position 0 of the event log into shadow schemas
(replay_<projection>_<time>), compare them with the live tables row by row, print the rows
that differ, and with --swap replace the live tables by the shadow ones in one transaction while
paymentd keeps serving (its projection runner resumes from the shadow's position). Before a
swap the event history is verified (hash chains, heads, the state machine and, with
AUDIT_PUBLIC_KEY, the seals): a history with a problem is not rebuilt into live tables.

The replay reads the log and writes only its shadow schemas: no Toss call, no webhook, no
message. Without --swap or --keep the shadows are dropped at the end.

Progress goes to stderr: a bar on a terminal, a line every few seconds otherwise.

Projections: ` + names + `, or all.

Exit status: 0 when every replayed read model equals its live one, or when --swap replaced
them; 1 when rows differ (they are printed) or --swap finds the history broken; 2 when the
replay could not run.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if projection != "all" && !slices.Contains(projections.ReplayableProjections(), projection) {
				return failed(fmt.Errorf("--projection %q: want one of %s or all", projection, names))
			}
			if limit < 1 {
				return failed(fmt.Errorf("--limit %d: must be at least 1", limit))
			}
			return checked(o.replay(cmd.Context(), projection, swap, keep, limit))
		},
	}
	c.Flags().StringVar(&projection, "projection", "all", "the read model to rebuild: "+names+" or all")
	c.Flags().BoolVar(&swap, "swap", false, "replace the live tables by the rebuilt ones (blue/green), even when they agree")
	c.Flags().BoolVar(&keep, "keep", false, "keep the shadow schemas for inspection (drop them with DROP SCHEMA ... CASCADE)")
	c.Flags().IntVar(&limit, "limit", 20, "differing rows printed per table (all are counted)")
	return c
}

func (o *operator) replay(ctx context.Context, projection string, swap, keep bool, limit int) (err error) {
	// The runtime reads GOGC from the process environment, not from getenv.
	if os.Getenv("GOGC") == "" {
		defer debug.SetGCPercent(debug.SetGCPercent(projections.ReplayGCPercent))
	}
	cfg, err := o.load(ctx)
	if err != nil {
		return err
	}
	pool, err := db.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer pool.Close()

	if swap {
		if err := o.verifyHistory(ctx, cfg, pool); err != nil {
			return err
		}
	}
	prog := newProgress(o.stderr, time.Now)
	res, err := projections.Replay(ctx, pool, []string{projection}, projections.ReplayOptions{Complete: swap || keep, Progress: prog.report})
	prog.finish()
	if err != nil {
		return err
	}
	fmt.Fprintf(o.stdout, "replayed %d events up to %s in %s (%.0f events/s)\n",
		res.Events, res.Position, res.Elapsed.Round(time.Millisecond), float64(res.Events)/max(res.Elapsed.Seconds(), 1e-9))
	if res.Pending > 0 {
		fmt.Fprintf(o.stdout, "%d events committed after %s were held back by an open transaction; they are applied to the shadows before any comparison\n",
			res.Pending, res.Position)
	}

	// Whatever happens below, no shadow is left behind unless asked for.
	left := map[string]bool{}
	for _, sh := range res.Shadows {
		left[sh.Schema] = true
	}
	defer func() {
		if keep {
			return
		}
		cleanup, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		for _, sh := range res.Shadows {
			if left[sh.Schema] {
				err = errors.Join(err, projections.DropShadow(cleanup, pool, sh.Schema))
			}
		}
	}()

	var differing int64
	for _, sh := range res.Shadows {
		c, err := projections.Compare(ctx, pool, sh.Schema, limit)
		if err != nil {
			return err
		}
		differing += c.Differing()
		printComparison(o.stdout, c)
		switch {
		case swap:
			sr, err := projections.Swap(ctx, pool, sh.Schema)
			if err != nil {
				return err
			}
			delete(left, sh.Schema)
			fmt.Fprintf(o.stdout, "%s: swapped: the live tables are the replayed ones; the projection resumes from %s (%d events applied to them after the replay)\n",
				sr.Projection, sr.Position, sr.CaughtUp)
		case keep:
			fmt.Fprintf(o.stdout, "%s: shadow kept in schema %s\n", sh.Projection, sh.Schema)
		}
	}
	if differing > 0 && !swap {
		return found("%d rows differ between the live and the replayed read models", differing)
	}
	return nil
}

// verifyHistory proves the event history before a swap puts tables rebuilt from it live: every
// stream's chain and head, its state-machine history and, with AUDIT_PUBLIC_KEY, the seals (an
// audit of the history alone). A replay of edited history would make the edit look like fact.
func (o *operator) verifyHistory(ctx context.Context, cfg Config, pool *pgxpool.Pool) error {
	key, err := cfg.AuditChainKey.Key()
	if err != nil {
		return err
	}
	rep, err := audit.New(pool, eventstore.NewPostgres(pool, eventstore.WithChainKey(key)), audit.Options{
		PublicKey:   []byte(cfg.AuditPublicKey),
		HistoryOnly: true,
		Progress:    progressPrinter(o.stderr),
	}).Run(ctx)
	if err != nil {
		return fmt.Errorf("verify the history before the swap: %w", err)
	}
	if rep.OK {
		fmt.Fprintf(o.stdout, "history verified: %d streams, %d events\n", rep.Streams, rep.Events)
		return nil
	}
	for _, p := range rep.Problems {
		fmt.Fprintf(o.stdout, "history: %s\n", p)
	}
	return found("the event history has %d problems (above; paymentctl audit tells more): no read model is rebuilt from it", len(rep.Problems))
}

func printComparison(w io.Writer, c projections.Comparison) {
	var rows int64
	for _, t := range c.Tables {
		rows += t.LiveRows
	}
	if c.Differing() == 0 {
		fmt.Fprintf(w, "%s: no differences as of %s (%d tables, %d rows)\n", c.Projection, c.Position, len(c.Tables), rows)
		return
	}
	fmt.Fprintf(w, "%s: %d rows differ as of %s\n", c.Projection, c.Differing(), c.Position)
	for _, t := range c.Tables {
		if t.Differing == 0 {
			continue
		}
		fmt.Fprintf(w, "  %s: %d rows differ (%d live rows, %d replayed)", t.Table, t.Differing, t.LiveRows, t.ShadowRows)
		if int64(len(t.Differences)) < t.Differing {
			fmt.Fprintf(w, "; the first %d:", len(t.Differences))
		}
		fmt.Fprintln(w)
		for _, d := range t.Differences {
			fmt.Fprintf(w, "    %s\n", d.Key)
			switch {
			case d.Live == "":
				fmt.Fprintf(w, "      live:   (missing)\n      replay: %s\n", d.Shadow)
			case d.Shadow == "":
				fmt.Fprintf(w, "      live:   %s\n      replay: (missing)\n", d.Live)
			default:
				fmt.Fprintf(w, "      live:   %s\n      replay: %s\n      differs in: %s\n", d.Live, d.Shadow, strings.Join(d.Columns, ", "))
			}
		}
	}
}

// progress shows a replay's progress: on a terminal one line redrawn as a bar with the rate
// and the time left; otherwise a plain line every few seconds and at the end of each phase,
// which reads well in a log.
type progress struct {
	w     io.Writer
	tty   bool
	width int
	now   func() time.Time
	last  time.Time
	phase projections.ReplayPhase
	shown int64 // Done of the last line printed in this phase
	drawn bool  // a bar is on the terminal's last line
}

// progressEvery is how often a plain progress line is printed.
const progressEvery = 3 * time.Second

func newProgress(w io.Writer, now func() time.Time) *progress {
	p := &progress{w: w, now: now}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.tty = true
		p.width = 80
		if width, _, err := term.GetSize(int(f.Fd())); err == nil && width > 40 {
			p.width = width
		}
	}
	return p
}

func (p *progress) report(r projections.ReplayProgress) {
	now := p.now()
	phaseDone := r.Done >= r.Total
	newPhase := r.Phase != p.phase
	if newPhase && p.drawn {
		fmt.Fprintln(p.w)
		p.drawn = false
	}
	if newPhase {
		p.shown = -1
	}
	p.phase = r.Phase
	name := strings.Join(r.Projections, ",")
	if len(r.Projections) == len(projections.ReplayableProjections()) {
		name = "all"
	}
	var what, rate string
	switch r.Phase {
	case projections.PhaseRead:
		what, rate = "events", fmt.Sprintf("%.0f events/s", r.Rate())
	case projections.PhaseLoad:
		what, rate = "rows loaded", fmt.Sprintf("%.0f rows/s", r.Rate())
	default:
		what = "indexes and constraints"
	}
	eta := ""
	if rate != "" {
		eta = fmt.Sprintf(", ETA %s", r.ETA().Round(time.Second))
	}
	if p.tty {
		text := fmt.Sprintf("replay %s: %d/%d %s", name, r.Done, r.Total, what)
		if rate != "" {
			text += ", " + rate + eta
		}
		barWidth := p.width - len(text) - 4
		if barWidth >= 10 && r.Total > 0 {
			filled := int(float64(barWidth) * float64(min(r.Done, r.Total)) / float64(r.Total))
			text = "[" + strings.Repeat("=", filled) + strings.Repeat(" ", barWidth-filled) + "] " + text
		}
		fmt.Fprintf(p.w, "\r%s", text)
		p.drawn = true
		return
	}
	if r.Done == p.shown || !phaseDone && !newPhase && now.Sub(p.last) < progressEvery {
		return
	}
	p.last, p.shown = now, r.Done
	if rate != "" {
		fmt.Fprintf(p.w, "replay %s: %d/%d %s, %s%s\n", name, r.Done, r.Total, what, rate, eta)
	} else {
		fmt.Fprintf(p.w, "replay %s: %d/%d %s\n", name, r.Done, r.Total, what)
	}
}

// finish ends a bar's line.
func (p *progress) finish() {
	if p.drawn {
		fmt.Fprintln(p.w)
		p.drawn = false
	}
}
