package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/cobra"

	"github.com/paymentledger/ledger/internal/db"
	"github.com/paymentledger/ledger/projections"
)

// dlqKind is one kind of dead letter paymentctl dlq handles, chosen with --kind. Each kind
// opens what it reads (the database, NATS), reads its own ids and prints its own rows:
// projection (events a projection runner parked; the default) and notify (merchant
// notifications that ran out of deliveries).
type dlqKind interface {
	list(ctx context.Context, f dlqFilter) error
	show(ctx context.Context, id string) error
	redrive(ctx context.Context, id string) error
	redriveAll(ctx context.Context, f dlqFilter) error
}

// dlqFilter is the list and redrive --all flags.
type dlqFilter struct {
	source   string // the projection, for kind projection
	stream   string
	merchant string // for kind notify
	limit    int
}

// dlqProjections are the projections paymentd runs, hence those whose parked events a redrive
// may apply.
var dlqProjections = []projections.Projection{projections.PaymentOrders{}, projections.Ledger{}, projections.Merchants{}}

func (o *operator) dlqKinds(asJSON bool) map[string]dlqKind {
	return map[string]dlqKind{"projection": &parkedKind{o: o, asJSON: asJSON}, "notify": &notifyKind{o: o, asJSON: asJSON}}
}

// dlqCommand is paymentctl dlq: list, show and redrive dead letters.
func (o *operator) dlqCommand() *cobra.Command {
	var kind string
	var asJSON bool
	var f dlqFilter
	var all bool
	names := strings.Join(slices.Sorted(func(yield func(string) bool) {
		for k := range o.dlqKinds(false) {
			if !yield(k) {
				return
			}
		}
	}), ", ")
	c := &cobra.Command{
		Use:   "dlq list|show|redrive",
		Short: "Dead letters: events a projection parked, notifications that ran out of deliveries (list, show, redrive)",
		Long: `Dead letters. Kind projection (the default): an event whose apply kept failing in a
projection runner (paymentd) is parked ("poison"), and the later events of its stream are held
behind it, not applied ("held"), while every other stream goes on. Once the cause is fixed (a
new paymentd, a data repair), redrive applies a stream's poison and held events in stream order
in one transaction and removes them; if the poison still fails nothing changes.

  paymentctl dlq list [--projection NAME] [--stream ID] [--limit N] [--json]
  paymentctl dlq show ID [--json]
  paymentctl dlq redrive ID [--json]        the stream of that row (poison or held)
  paymentctl dlq redrive --all [--projection NAME] [--stream ID] [--json]

Kind notify: a merchant notification (its payment event POSTed to the merchant's URL) that
failed NOTIFY_MAX_DELIVER times. paymentd records it from JetStream's MAX_DELIVERIES advisory
in the stream NOTIFY_DLQ; the merchant's later events went on. redrive delivers it once more,
exactly once: paymentd POSTs it again until the merchant answers 2xx, then removes it. It reads
NATS_URL, or the embedded server's address paymentd wrote to DATA_DIR/nats.url.

  paymentctl dlq list --kind notify [--merchant ID] [--json]
  paymentctl dlq show ID --kind notify [--json]  the original message's body included
  paymentctl dlq redrive ID --kind notify
  paymentctl dlq redrive --all --kind notify [--merchant ID]

Kinds: ` + names + `.

Exit status: 0 when done, 1 when a row is not found or a redrive still fails (the other streams
of --all are redriven all the same).`,
	}
	c.PersistentFlags().StringVar(&kind, "kind", "projection", "the kind of dead letter: "+names)
	c.PersistentFlags().BoolVar(&asJSON, "json", false, "print JSON")
	kindOf := func() (dlqKind, error) {
		k, ok := o.dlqKinds(asJSON)[kind]
		if !ok {
			return nil, fmt.Errorf("--kind %q: want one of %s", kind, names)
		}
		return k, nil
	}
	filterFlags := func(cmd *cobra.Command) {
		cmd.Flags().StringVar(&f.source, "projection", "", "only this projection's (kind projection)")
		cmd.Flags().StringVar(&f.stream, "stream", "", "only this stream's (kind projection)")
		cmd.Flags().StringVar(&f.merchant, "merchant", "", "only this merchant's (kind notify)")
	}

	list := &cobra.Command{
		Use:   "list [--projection NAME] [--stream ID] [--limit N]",
		Short: "List the parked and held events, each stream's poison first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			k, err := kindOf()
			if err != nil {
				return err
			}
			return k.list(cmd.Context(), f)
		},
	}
	filterFlags(list)
	list.Flags().IntVar(&f.limit, "limit", 1000, "at most this many rows")

	show := &cobra.Command{
		Use:   "show ID",
		Short: "Show one parked or held event, with the error of a poison event",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			k, err := kindOf()
			if err != nil {
				return err
			}
			return k.show(cmd.Context(), args[0])
		},
	}

	redrive := &cobra.Command{
		Use:   "redrive ID | --all",
		Short: "Apply a stream's poison and held events in order, once the cause is fixed, and remove them",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if all == (len(args) == 1) {
				return errors.New("redrive takes an ID or --all")
			}
			k, err := kindOf()
			if err != nil {
				return err
			}
			if all {
				return k.redriveAll(cmd.Context(), f)
			}
			return k.redrive(cmd.Context(), args[0])
		},
	}
	redrive.Flags().BoolVar(&all, "all", false, "every parked stream (those --projection and --stream select)")
	filterFlags(redrive)
	c.AddCommand(list, show, redrive)
	return c
}

// withPool connects to the database for f.
func (o *operator) withPool(ctx context.Context, f func(*pgxpool.Pool) error) error {
	cfg, err := o.load(ctx)
	if err != nil {
		return err
	}
	pool, err := db.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	return f(pool)
}

// parkedKind is kind projection: projections.ListParked, ParkedEvent and Redrive.
type parkedKind struct {
	o      *operator
	asJSON bool
}

func parseParkedID(s string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id < 1 {
		return 0, fmt.Errorf("id %q: want the number dlq list shows", s)
	}
	return id, nil
}

func (k *parkedKind) list(ctx context.Context, f dlqFilter) error {
	return k.o.withPool(ctx, func(pool *pgxpool.Pool) error { return k.listIn(ctx, pool, f) })
}

func (k *parkedKind) listIn(ctx context.Context, pool *pgxpool.Pool, f dlqFilter) error {
	ps, err := projections.ListParked(ctx, pool, projections.ParkedFilter{Projection: f.source, StreamID: f.stream, Limit: f.limit})
	if err != nil {
		return err
	}
	if k.asJSON {
		if ps == nil {
			ps = []projections.Parked{}
		}
		return k.o.printJSON(ps)
	}
	if len(ps) == 0 {
		fmt.Fprintln(k.o.stdout, "no parked events")
		return nil
	}
	tw := tabwriter.NewWriter(k.o.stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tPROJECTION\tSTATE\tSTREAM\tV\tEVENT\tATTEMPTS\tPARKED (UTC)\tERROR")
	for _, p := range ps {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%s\t%d\t%s\t%s\n", p.ID, p.Projection, p.State, p.StreamID, p.StreamVersion,
			p.EventType, p.Attempts, p.ParkedAt.UTC().Format("2006-01-02 15:04:05"), firstLineOf(p.Error, 80))
	}
	return tw.Flush()
}

func (k *parkedKind) show(ctx context.Context, arg string) error {
	id, err := parseParkedID(arg)
	if err != nil {
		return err
	}
	var p projections.Parked
	if err := k.o.withPool(ctx, func(pool *pgxpool.Pool) (err error) {
		p, err = projections.ParkedEvent(ctx, pool, id)
		return err
	}); err != nil {
		return err
	}
	if k.asJSON {
		return k.o.printJSON(p)
	}
	tw := tabwriter.NewWriter(k.o.stdout, 2, 4, 2, ' ', 0)
	for _, row := range [][2]string{
		{"id", strconv.FormatInt(p.ID, 10)}, {"projection", p.Projection}, {"state", string(p.State)},
		{"event", p.EventID.String()}, {"type", p.EventType}, {"stream", p.StreamID},
		{"version", strconv.FormatInt(p.StreamVersion, 10)}, {"position", p.Position},
		{"attempts", strconv.Itoa(p.Attempts)}, {"parked at", p.ParkedAt.UTC().Format("2006-01-02 15:04:05.000000 UTC")},
	} {
		fmt.Fprintf(tw, "%s:\t%s\n", row[0], row[1])
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if p.State == projections.StatePoison {
		fmt.Fprintf(k.o.stdout, "error:\n  %s\n", p.Error)
	} else {
		fmt.Fprintln(k.o.stdout, "held behind the stream's poison event; a redrive applies it after the poison")
	}
	return nil
}

func (k *parkedKind) redrive(ctx context.Context, arg string) error {
	id, err := parseParkedID(arg)
	if err != nil {
		return err
	}
	var res projections.RedriveResult
	if err := k.o.withPool(ctx, func(pool *pgxpool.Pool) (err error) {
		res, err = projections.Redrive(ctx, pool, dlqProjections, id)
		return err
	}); err != nil {
		return err
	}
	return k.printRedriven([]projections.RedriveResult{res})
}

func (k *parkedKind) redriveAll(ctx context.Context, f dlqFilter) error {
	var res []projections.RedriveResult
	err := k.o.withPool(ctx, func(pool *pgxpool.Pool) (err error) {
		res, err = projections.RedriveAll(ctx, pool, dlqProjections, projections.ParkedFilter{Projection: f.source, StreamID: f.stream})
		return err
	})
	if perr := k.printRedriven(res); perr != nil {
		return errors.Join(err, perr)
	}
	return err
}

func (k *parkedKind) printRedriven(res []projections.RedriveResult) error {
	if k.asJSON {
		if res == nil {
			res = []projections.RedriveResult{}
		}
		return k.o.printJSON(res)
	}
	if len(res) == 0 {
		fmt.Fprintln(k.o.stdout, "nothing redriven")
	}
	for _, r := range res {
		fmt.Fprintf(k.o.stdout, "%s: %s: %d events applied and removed from the dead letters\n", r.Projection, r.StreamID, r.Applied)
	}
	return nil
}

// firstLineOf is s's first line, cut to n characters.
func firstLineOf(s string, n int) string {
	s, _, _ = strings.Cut(s, "\n")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}
