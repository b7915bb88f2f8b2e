package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"text/tabwriter"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/natsbus"
	"github.com/paymentledger/ledger/notify"
)

// notifyKind is kind notify: notify.ListDeadLetters, DeadLetter and Redrive, over NATS.
type notifyKind struct {
	o      *operator
	asJSON bool
}

// withJS connects to NATS (NATS_URL, or the embedded server's address under DATA_DIR) for f.
func (k *notifyKind) withJS(ctx context.Context, f func(jetstream.JetStream) error) error {
	cfg, err := k.o.load(ctx)
	if err != nil {
		return err
	}
	url, err := natsbus.ResolveURL(cfg.NATSURL, cfg.DataDir)
	if err != nil {
		return err
	}
	bus, err := natsbus.Connect(url, "paymentctl", nil)
	if err != nil {
		return err
	}
	defer bus.Close()
	return f(bus.JS)
}

func parseDeadLetterID(s string) (uint64, error) {
	id, err := strconv.ParseUint(s, 10, 64)
	if err != nil || id < 1 {
		return 0, fmt.Errorf("id %q: want the number dlq list --kind notify shows", s)
	}
	return id, nil
}

// merchantFilter checks --merchant: empty for every merchant.
func merchantFilter(s string) (domain.MerchantID, error) {
	if s == "" {
		return "", nil
	}
	return domain.ParseMerchantID(s)
}

// deadLetters lists the dead letters f selects; none when paymentd never created NOTIFY_DLQ.
func deadLetters(ctx context.Context, js jetstream.JetStream, f dlqFilter) ([]notify.DeadLetterEntry, error) {
	m, err := merchantFilter(f.merchant)
	if err != nil {
		return nil, err
	}
	ds, err := notify.ListDeadLetters(ctx, js, m)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, nil
	}
	if f.limit > 0 && len(ds) > f.limit {
		ds = ds[:f.limit]
	}
	return ds, err
}

func (k *notifyKind) list(ctx context.Context, f dlqFilter) error {
	return k.withJS(ctx, func(js jetstream.JetStream) error {
		ds, err := deadLetters(ctx, js, f)
		if err != nil {
			return err
		}
		if k.asJSON {
			if ds == nil {
				ds = []notify.DeadLetterEntry{}
			}
			return k.o.printJSON(ds)
		}
		if len(ds) == 0 {
			fmt.Fprintln(k.o.stdout, "no dead letters")
			return nil
		}
		tw := tabwriter.NewWriter(k.o.stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tMERCHANT\tPAYMENTS SEQ\tDELIVERIES\tAT (KST)")
		for _, d := range ds {
			fmt.Fprintf(tw, "%d\t%s\t%d\t%d\t%s\n", d.ID, d.MerchantID, d.StreamSeq, d.Deliveries, d.At.In(domain.KST).Format("2006-01-02 15:04:05"))
		}
		return tw.Flush()
	})
}

func (k *notifyKind) show(ctx context.Context, arg string) error {
	id, err := parseDeadLetterID(arg)
	if err != nil {
		return err
	}
	return k.withJS(ctx, func(js jetstream.JetStream) error {
		d, err := notify.DeadLetter(ctx, js, id)
		if err != nil {
			return err
		}
		if k.asJSON {
			return k.o.printJSON(d)
		}
		tw := tabwriter.NewWriter(k.o.stdout, 2, 4, 2, ' ', 0)
		for _, row := range [][2]string{
			{"id", strconv.FormatUint(d.ID, 10)}, {"merchant", string(d.MerchantID)}, {"consumer", d.Consumer},
			{"payments seq", strconv.FormatUint(d.StreamSeq, 10)}, {"deliveries", strconv.FormatUint(d.Deliveries, 10)},
			{"at", d.At.In(domain.KST).Format("2006-01-02 15:04:05 KST")}, {"event", d.EventID}, {"type", d.EventType},
			{"subject", d.Subject}, {"redrive pending", strconv.FormatBool(d.RedrivePending)},
		} {
			fmt.Fprintf(tw, "%s:\t%s\n", row[0], row[1])
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		if d.Body == nil {
			fmt.Fprintln(k.o.stdout, "body: PAYMENTS no longer holds the message (NATS_MAX_AGE passed)")
			return nil
		}
		fmt.Fprintf(k.o.stdout, "body:\n  %s\n", d.Body)
		return nil
	})
}

func (k *notifyKind) redrive(ctx context.Context, arg string) error {
	id, err := parseDeadLetterID(arg)
	if err != nil {
		return err
	}
	return k.withJS(ctx, func(js jetstream.JetStream) error {
		if err := notify.Redrive(ctx, js, id); err != nil {
			return err
		}
		return k.printRedriven([]uint64{id})
	})
}

// redriveAll redrives every dead letter f selects that is not pending already; the failures are
// joined, the others redriven all the same.
func (k *notifyKind) redriveAll(ctx context.Context, f dlqFilter) error {
	return k.withJS(ctx, func(js jetstream.JetStream) error {
		ds, err := deadLetters(ctx, js, f)
		if err != nil {
			return err
		}
		var done []uint64
		var errs []error
		for _, d := range ds {
			if err := notify.Redrive(ctx, js, d.ID); errors.Is(err, notify.ErrAlreadyRedriven) {
				continue
			} else if err != nil {
				errs = append(errs, err)
				continue
			}
			done = append(done, d.ID)
		}
		return errors.Join(append(errs, k.printRedriven(done))...)
	})
}

func (k *notifyKind) printRedriven(ids []uint64) error {
	if k.asJSON {
		if ids == nil {
			ids = []uint64{}
		}
		return k.o.printJSON(map[string]any{"redriven": ids})
	}
	if len(ids) == 0 {
		fmt.Fprintln(k.o.stdout, "nothing redriven")
	}
	for _, id := range ids {
		fmt.Fprintf(k.o.stdout, "dead letter %d: redriven; paymentd delivers it once the merchant answers 2xx, then removes it\n", id)
	}
	return nil
}
