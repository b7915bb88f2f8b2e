package main

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/eventstore"
	"github.com/paymentledger/ledger/projections"
	"github.com/paymentledger/ledger/queries"
)

// historyLine is one event of a payment as a person reads it.
type historyLine struct {
	Version int64     `json:"version"`
	At      time.Time `json:"at"` // when it was recorded, KST
	Event   string    `json:"event"`
	Amount  string    `json:"amount,omitempty"`
	Actor   string    `json:"actor"`
	// Key is the Toss idempotency key of an attempt, or Toss's transaction key of a fact.
	Key  string `json:"key,omitempty"`
	Hash string `json:"hash"` // the first 12 hex digits of the event's chain hash
}

// historyOf describes one stored event.
func historyOf(r eventstore.RecordedEvent) historyLine {
	l := historyLine{Version: r.Version, At: r.RecordedAt.In(domain.KST), Event: r.Type, Actor: r.Metadata.Actor,
		Hash: hex.EncodeToString(r.Hash)[:min(12, 2*len(r.Hash))]}
	e, err := domain.UnmarshalEvent(r.Type, r.SchemaVersion, r.Data)
	if err != nil {
		l.Event += " (undecodable: " + err.Error() + ")"
		return l
	}
	switch e := e.(type) {
	case domain.CheckoutCreated:
		l.Amount = e.TotalAmount.String()
	case domain.ConfirmationStarted:
		l.Amount, l.Key = e.Amount.String(), e.PSPIdempotencyKey
	case domain.PaymentApproved:
		l.Amount, l.Key = e.TotalAmount.String(), e.LastTransactionKey
	case domain.PaymentApprovedAtPSP:
		l.Amount, l.Key = e.TotalAmount.String(), e.LastTransactionKey
	case domain.PaymentRejected:
		l.Event += " " + e.Code
	case domain.PaymentOutcomeUnknown:
		l.Event += " " + e.Code
	case domain.CancelRequested:
		l.Amount, l.Key = e.Amount.String(), e.PSPIdempotencyKey
	case domain.CancelRetried:
		l.Key = e.PSPIdempotencyKey
	case domain.PaymentCanceled:
		l.Amount, l.Key = e.Amount.String(), e.TransactionKey
	case domain.PaymentCanceledAtPSP:
		l.Amount, l.Key = e.Amount.String(), e.TransactionKey
	case domain.CancelRejected:
		l.Event += " " + e.Code
	case domain.SettlementRecorded:
		l.Amount, l.Key = e.Amount.String(), e.TransactionKey
	}
	return l
}

func (o *operator) historyCommand() *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "history ORDER_ID [--json]",
		Short: "A payment's timeline as a person reads it: time (KST), event, amount, actor, attempt or transaction key, hash prefix",
		Long: `A payment's timeline as a person reads it, from its event stream: every event with the time
it was recorded (KST), the amount it moves, who recorded it (merchant, recovery, webhook,
reconciliation, ...), the Toss idempotency key of an attempt or Toss's transaction key of a fact,
and the first digits of its chain hash. The stream is verified against its recorded head first;
a broken history is still shown, under a warning naming what is wrong (exit status 1).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := domain.ParseOrderID(args[0])
			if err != nil {
				return fmt.Errorf("order id: %w", err)
			}
			return o.with(cmd.Context(), false, func(env opEnv) error {
				stream := domain.StreamName(id)
				recs, verr := env.store.ReadVerified(cmd.Context(), stream)
				switch {
				case errors.Is(verr, eventstore.ErrStreamNotFound):
					return fmt.Errorf("no payment with orderId %s", id)
				case errors.Is(verr, eventstore.ErrChainBroken):
					if recs, err = env.store.ReadStream(cmd.Context(), stream, 1); err != nil {
						return err
					}
				case verr != nil:
					return verr
				}
				lines := make([]historyLine, len(recs))
				for i, r := range recs {
					lines[i] = historyOf(r)
				}
				if asJSON {
					out := map[string]any{"orderId": id, "verified": verr == nil, "events": lines}
					if verr != nil {
						out["problem"] = verr.Error()
					}
					if err := o.printJSON(out); err != nil {
						return err
					}
				} else {
					if verr != nil {
						fmt.Fprintf(o.stdout, "WARNING: this history failed verification: %v\n\n", verr)
					}
					if len(recs) > 0 {
						fmt.Fprintf(o.stdout, "order %s of merchant %s\n\n", id, recs[0].Metadata.MerchantID)
					}
					tw := tabwriter.NewWriter(o.stdout, 2, 4, 2, ' ', 0)
					fmt.Fprintln(tw, "V\tTIME (KST)\tEVENT\tAMOUNT\tACTOR\tKEY\tHASH")
					for _, l := range lines {
						fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", l.Version, l.At.Format("2006-01-02 15:04:05"), l.Event, l.Amount, l.Actor, l.Key, l.Hash)
					}
					if err := tw.Flush(); err != nil {
						return err
					}
				}
				if verr != nil {
					return errors.New("the payment's history failed verification; see above")
				}
				return nil
			})
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

func (o *operator) balancesCommand() *cobra.Command {
	var asOfText, merchant string
	var asJSON bool
	c := &cobra.Command{
		Use:   "balances [--as-of TIME] [--merchant ID] [--json]",
		Short: "Every account's balance of each merchant's books at a moment (RFC 3339 or a KST date; default now)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			asOf, err := parseAsOf(asOfText)
			if err != nil {
				return err
			}
			return o.with(cmd.Context(), false, func(env opEnv) error {
				// The books as the whole log says, whether or not a paymentd keeps them.
				if err := o.catchUp(cmd.Context(), env, projections.Merchants{}, projections.Ledger{}); err != nil {
					return err
				}
				ids := []domain.MerchantID{}
				if merchant != "" {
					id, err := domain.ParseMerchantID(merchant)
					if err != nil {
						return fmt.Errorf("--merchant: %w", err)
					}
					if _, err := env.svc.Show(cmd.Context(), id); err != nil {
						return err
					}
					ids = append(ids, id)
				} else {
					ms, err := env.svc.List(cmd.Context())
					if err != nil {
						return err
					}
					for _, m := range ms {
						ids = append(ids, m.MerchantID)
					}
				}
				ledger := queries.NewLedger(env.pool)
				all := map[domain.MerchantID]queries.TrialBalance{}
				for _, id := range ids {
					tb, err := ledger.TrialBalance(cmd.Context(), id, asOf, "")
					if err != nil {
						return err
					}
					all[id] = tb
				}
				if asJSON {
					return o.printJSON(map[string]any{"asOf": asOf.In(domain.KST), "merchants": all})
				}
				tw := tabwriter.NewWriter(o.stdout, 2, 4, 2, ' ', tabwriter.AlignRight)
				fmt.Fprintf(o.stdout, "balances as of %s (balance = debits - credits)\n\n", asOf.In(domain.KST).Format(time.RFC3339))
				fmt.Fprintln(tw, "MERCHANT\tACCOUNT\tDEBITS\tCREDITS\tBALANCE\t")
				for _, id := range ids {
					tb := all[id]
					for _, a := range tb.Accounts {
						fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t\n", id, a.Account, a.Debits, a.Credits, a.Balance)
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t\n", id, "(total)", tb.TotalDebits, tb.TotalCredits, tb.TotalDebits.Sub(tb.TotalCredits))
				}
				return tw.Flush()
			})
		},
	}
	c.Flags().StringVar(&asOfText, "as-of", "", "the moment: RFC 3339 (2026-11-21T18:00:00+09:00) or a date, meaning the end of that day in KST; default now")
	c.Flags().StringVar(&merchant, "merchant", "", "one merchant's books (default every merchant)")
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

// parseAsOf reads a moment: RFC 3339, or a yyyy-MM-dd date meaning the end of that KST day.
func parseAsOf(s string) (time.Time, error) {
	if s == "" {
		return time.Now().In(domain.KST), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseInLocation(time.DateOnly, s, domain.KST); err == nil {
		return d.AddDate(0, 0, 1).Add(-time.Microsecond), nil
	}
	return time.Time{}, fmt.Errorf("--as-of %q is neither RFC 3339 (2026-11-21T18:00:00+09:00) nor a date (2026-11-21)", strings.TrimSpace(s))
}
