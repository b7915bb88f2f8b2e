package audit_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/paymentledger/ledger/audit"
	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/eventstore"
)

// standard appends the fixture's usual history: three settled payments, one only checked out,
// with the read models caught up.
func standard(t *testing.T, opts ...eventstore.Option) *fixture {
	f := newFixture(t, opts...)
	for _, o := range []string{"order1", "order2", "order3"} {
		f.pay(o, 4)
	}
	f.pay("order4", 1)
	f.project()
	return f
}

func TestCleanHistoryIsOK(t *testing.T) {
	f := standard(t)
	rep := f.audit("")
	wantOK(t, rep)
	if rep.Streams != 5 || rep.Events != 1+3*4+1 {
		t.Fatalf("counted %d streams, %d events", rep.Streams, rep.Events)
	}
	// Sealed twice, with the seal file as the off-machine copy: still clean.
	f.seal()
	f.pay("order5", 4)
	f.project()
	f.seal()
	wantOK(t, f.audit(f.file))
}

func TestEditedPayloadIsAHashMismatch(t *testing.T) {
	f := standard(t)
	// The append-only trigger disabled, as the brief's editor does it.
	for _, sql := range []string{
		`ALTER TABLE events DISABLE TRIGGER events_no_update_delete`,
		`UPDATE events SET data = replace(data::text, '"CARD"', '"TRANSFER"')::json WHERE stream_id = 'payment-order2' AND version = 3`,
		`ALTER TABLE events ENABLE TRIGGER events_no_update_delete`,
	} {
		if _, err := f.pool.Exec(context.Background(), sql); err != nil {
			t.Fatal(err)
		}
	}
	rep := f.audit("")
	wantProblem(t, rep, audit.KindHashMismatch, "payment-order2", 3, "hash does not match")
	onlyKinds(t, rep, audit.KindHashMismatch)
	if len(rep.Problems) != 1 {
		t.Fatalf("one edit, %d problems:\n%s", len(rep.Problems), describe(rep))
	}
}

func TestDeletedLastEventIsATailMissing(t *testing.T) {
	f := standard(t)
	f.tamper(`DELETE FROM events WHERE stream_id = 'payment-order2' AND version = 4`)
	rep := f.audit("")
	wantProblem(t, rep, audit.KindTailMissing, "payment-order2", 4, "head is at version 4")
	// The ledger booked the deleted settlement: its entries now record an event the log lacks.
	wantProblem(t, rep, audit.KindProjectionDrift, "payment-order2", 0, "not in the event log")
	onlyKinds(t, rep, audit.KindTailMissing, audit.KindProjectionDrift)
}

func TestDeletedStreamAfterASeal(t *testing.T) {
	f := standard(t)
	f.seal()
	f.tamper(`DELETE FROM events WHERE stream_id = 'payment-order2'`)
	f.tamper(`DELETE FROM event_streams WHERE stream_id = 'payment-order2'`)
	rep := f.audit("")
	wantProblem(t, rep, audit.KindStreamMissing, "payment-order2", 4, "seal 1 sealed it at version 4", "payment_orders", "ledger_orders")
	wantProblem(t, rep, audit.KindSealMismatch, "", 0, "seal 1's position", "does not match its signed root")
}

// recomputePlain rewrites stream's payload at version v and recomputes every hash from there
// with the plain function, moving the head along: a superuser who knows the formula. alg says
// whether the rewrite also claims the plain function (hash_alg) or leaves it as it was.
func recomputePlain(f *fixture, stream string, v int64, claimPlain bool) {
	f.t.Helper()
	events := f.events(stream)
	events[v-1].Data = bytes.Replace(events[v-1].Data, []byte(`"CARD"`), []byte(`"TRANSFER"`), 1)
	f.tamper(`UPDATE events SET data = $3::json WHERE stream_id = $1 AND version = $2`, stream, v, string(events[v-1].Data))
	prev := make([]byte, sha256.Size)
	for _, e := range events {
		if e.Version >= v {
			e.PrevHash = prev
			sum := sha256.Sum256(append(bytes.Clone(prev), eventstore.CanonicalBytes(e)...))
			e.Hash = sum[:]
			alg := e.HashAlg.String()
			if claimPlain {
				alg = "sha256"
			}
			f.tamper(`UPDATE events SET prev_hash = $3, hash = $4, hash_alg = $5 WHERE stream_id = $1 AND version = $2`,
				stream, e.Version, e.PrevHash, e.Hash, alg)
		}
		prev = e.Hash
	}
	f.tamper(`UPDATE event_streams SET last_hash = $2 WHERE stream_id = $1`, stream, prev)
}

func TestRecomputedHashesAfterASealAreASealMismatch(t *testing.T) {
	f := standard(t)
	f.seal()
	recomputePlain(f, "payment-order3", 3, true)
	rep := f.audit("")
	// The chain holds (the attacker recomputed it); only the seal tells, naming the stream.
	wantProblem(t, rep, audit.KindSealMismatch, "payment-order3", 4, "seal 1 sealed version 4 with hash", "rewritten")
	wantProblem(t, rep, audit.KindSealMismatch, "", 0, "does not match its signed root")
	onlyKinds(t, rep, audit.KindSealMismatch)
}

func chainKeyOption(t *testing.T) eventstore.Option {
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		t.Fatal(err)
	}
	k, err := eventstore.NewChainKey(secret)
	if err != nil {
		t.Fatal(err)
	}
	return eventstore.WithChainKey(k)
}

func TestRecomputedHashesWithAChainKeyAreAHashMismatch(t *testing.T) {
	t.Run("hashes recomputed in place", func(t *testing.T) {
		f := standard(t, chainKeyOption(t))
		recomputePlain(f, "payment-order3", 3, false)
		rep := f.audit("")
		wantProblem(t, rep, audit.KindHashMismatch, "payment-order3", 3, "hash does not match")
		onlyKinds(t, rep, audit.KindHashMismatch)
	})
	t.Run("downgraded to plain hashes", func(t *testing.T) {
		f := standard(t, chainKeyOption(t))
		recomputePlain(f, "payment-order3", 3, true)
		rep := f.audit("")
		wantProblem(t, rep, audit.KindHashMismatch, "payment-order3", 3, "plain sha256 hash after a keyed event", "downgrade")
		onlyKinds(t, rep, audit.KindHashMismatch)
	})
	t.Run("the whole stream downgraded", func(t *testing.T) {
		f := standard(t, chainKeyOption(t))
		recomputePlain(f, "payment-order3", 1, true)
		rep := f.audit("")
		wantProblem(t, rep, audit.KindHashMismatch, "payment-order3", 1, "after the chain key's activation", "downgrade")
		onlyKinds(t, rep, audit.KindHashMismatch)
	})
	t.Run("audited without the key", func(t *testing.T) {
		f := standard(t, chainKeyOption(t))
		rep, err := audit.New(f.pool, eventstore.NewPostgres(f.pool), audit.Options{}).Run(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		wantProblem(t, rep, audit.KindChainBroken, "payment-order3", 1, "no chain key")
	})
	t.Run("activation record deleted", func(t *testing.T) {
		key := chainKeyOption(t)
		f := standard(t, key)
		f.tamper(`DELETE FROM event_chain_keys`)
		// A new process: the fixture's store remembers the activation it read.
		rep, err := audit.New(f.pool, eventstore.NewPostgres(f.pool, key), audit.Options{}).Run(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		wantProblem(t, rep, audit.KindChainBroken, "", 0, "no activation record")
	})
}

func TestIllegalTransitionWithValidHashes(t *testing.T) {
	f := standard(t)
	// order4 was only checked out: an approval without a confirm, appended through the store.
	co := paymentEvents(t, "order4", "seller-order4", 10000, 1, f.at)[0].(domain.CheckoutCreated)
	f.appendEvents("payment-order4", eventstore.Exact(1), []domain.Event{domain.PaymentApproved{
		EventHeader: co.EventHeader, PaymentKey: "pk-order4", ApprovedAt: f.at, Method: "CARD", TotalAmount: co.TotalAmount, LastTransactionKey: "tx-order4",
	}})
	// A merchant event in a payment's stream, and a payment of another order.
	f.appendEvents("payment-order1", eventstore.Exact(4), []domain.Event{
		domain.CommissionRateChanged{MerchantHeader: domain.MerchantHeader{MerchantID: merchant, At: f.at}},
	})
	f.appendEvents("payment-order9", eventstore.NoStream, paymentEvents(t, "order8", "s", 1000, 1, f.at))
	rep := f.audit("")
	wantProblem(t, rep, audit.KindIllegalTransition, "payment-order4", 2, "illegal transition")
	wantProblem(t, rep, audit.KindIllegalTransition, "payment-order1", 5, `of order ""`)
	wantProblem(t, rep, audit.KindIllegalTransition, "payment-order9", 1, `of order "order8" in the stream of order "order9"`)
	onlyKinds(t, rep, audit.KindIllegalTransition)
}

func TestUnbalancedEntryInsertedByHand(t *testing.T) {
	f := standard(t)
	var approval string
	if err := f.pool.QueryRow(context.Background(),
		`SELECT event_id::text FROM events WHERE stream_id = 'payment-order1' AND version = 3`).Scan(&approval); err != nil {
		t.Fatal(err)
	}
	// The deferred balance trigger disabled, one posting only.
	f.tamper(`WITH e AS (
			INSERT INTO journal_entries (event_id, order_id, merchant_id, kind, currency, occurred_at)
			VALUES ($1, 'order1', 'shop', 'cancel', 'KRW', '2026-03-02T10:00:00+09:00') RETURNING id)
		INSERT INTO postings (entry_id, merchant_id, account, account_type, debit, credit, currency, occurred_at)
		SELECT id, 'shop', 'platform_revenue:commission', 'revenue', 500, 0, 'KRW', '2026-03-02T10:00:00+09:00' FROM e`, approval)
	rep := f.audit("")
	wantProblem(t, rep, audit.KindUnbalancedEntry, "payment-order1", 3, "1 postings, debits 500, credits 0")
	wantProblem(t, rep, audit.KindUnbalancedEntry, "merchant-shop", 0, "trial balance of merchant shop in KRW", "debits", "credits")
	onlyKinds(t, rep, audit.KindUnbalancedEntry)
}

func TestWalletMovementEditedByHand(t *testing.T) {
	f := standard(t)
	if _, err := f.pool.Exec(context.Background(), `UPDATE wallet_movements SET amount = amount + 1000
		WHERE order_id = 'order2' AND kind = 'approval'`); err != nil {
		t.Fatal(err)
	}
	rep := f.audit("")
	wantProblem(t, rep, audit.KindUnbalancedEntry, "payment-order2", 3, "wallet movements of entry", "seller seller-order2")
	wantProblem(t, rep, audit.KindUnbalancedEntry, "merchant-shop", 0, "wallet of seller seller-order2", "is not its seller_payable balance")
	onlyKinds(t, rep, audit.KindUnbalancedEntry)
}

func TestSealDeletedFromTheDatabaseButInTheFile(t *testing.T) {
	f := standard(t)
	f.seal()
	f.pay("order5", 4)
	f.seal()
	f.tamper(`DELETE FROM audit_seal_leaves WHERE seal_seq = 2`)
	f.tamper(`DELETE FROM audit_seals WHERE seq = 2`)
	wantOK(t, f.audit("")) // the database alone cannot tell: its newest seal is seal 1
	rep := f.audit(f.file)
	wantProblem(t, rep, audit.KindSealMismatch, "", 0, "seal 2", "is in the seal file but not in the database")
	onlyKinds(t, rep, audit.KindSealMismatch)

	// A later seal gets number 2 again: the file's seal 2 and the database's now differ.
	f.seal()
	rep = f.audit(f.file)
	wantProblem(t, rep, audit.KindSealMismatch, "", 0, "seal 2 in the seal file", "differs from the database's seal 2")
}

func TestSealsOfAnotherKeyAndAlteredLeaves(t *testing.T) {
	f := standard(t)
	f.seal()
	f.pay("order5", 4)
	f.seal()

	// Verified with another public key, nothing checks out.
	_, otherPub, err := audit.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	rep, err := audit.New(f.pool, f.store, audit.Options{PublicKey: otherPub}).Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	wantProblem(t, rep, audit.KindSealMismatch, "", 0, "seal 1 is signed by key")

	// No key at all: the audit refuses to pass over the seals.
	if _, err := audit.New(f.pool, f.store, audit.Options{}).Run(context.Background()); err == nil {
		t.Fatal("an audit with seals and no public key succeeded")
	}

	// A seal planted in the database (here seal 2 re-dated, its signature no longer valid) is
	// never chained to: sealing stops, loudly.
	var genuine string
	if err := f.pool.QueryRow(context.Background(), `SELECT seal::text FROM audit_seals WHERE seq = 2`).Scan(&genuine); err != nil {
		t.Fatal(err)
	}
	f.tamper(`UPDATE audit_seals SET seal = jsonb_set(seal::jsonb, '{sealedAt}', '"2099-01-01T00:00:00Z"') WHERE seq = 2`)
	if _, err := f.sealer().Seal(context.Background()); err == nil || !strings.Contains(err.Error(), "does not verify with this signing key") {
		t.Fatalf("a seal chained to a planted one: %v", err)
	}
	f.tamper(`UPDATE audit_seals SET seal = $1 WHERE seq = 2`, genuine)

	// A stored leaf of seal 2 altered to hide a rewrite of order5: the signed root disagrees.
	recomputePlain(f, "payment-order5", 3, true)
	last := f.events("payment-order5")[3]
	f.tamper(`UPDATE audit_seal_leaves SET hash = $1 WHERE seal_seq = 2 AND stream_id = 'payment-order5'`, last.Hash)
	rep = f.audit("")
	wantProblem(t, rep, audit.KindSealMismatch, "", 0, "leaves stored for seal 2 were altered")
	wantProblem(t, rep, audit.KindSealMismatch, "", 0, "seal 2's position", "does not match its signed root")
}

func TestStreamInsertedIntoTheSealedPast(t *testing.T) {
	f := standard(t)
	f.seal()
	// A whole stream with valid hashes, its rows dated to an old transaction.
	f.appendEvents("payment-order7", eventstore.NoStream, paymentEvents(t, "order7", "s7", 3000, 3, f.at))
	f.tamper(`UPDATE events SET transaction_id = (SELECT transaction_id FROM events WHERE stream_id = 'payment-order1' AND version = 1)
		WHERE stream_id = 'payment-order7'`)
	rep := f.audit("")
	wantProblem(t, rep, audit.KindSealMismatch, "payment-order7", 1, "inserted into the sealed past")
}

func TestHeadWithoutEventsAndReadModelRows(t *testing.T) {
	f := standard(t)
	f.tamper(`DELETE FROM events WHERE stream_id = 'payment-order3'`)
	rep := f.audit("")
	wantProblem(t, rep, audit.KindStreamMissing, "payment-order3", 4, "its head is at version 4", "payment_orders", "ledger_orders")
}

func TestReportJSON(t *testing.T) {
	f := standard(t)
	f.tamper(`DELETE FROM events WHERE stream_id = 'payment-order2' AND version = 4`)
	b, err := json.Marshal(f.audit(""))
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		OK       bool `json:"ok"`
		Streams  int  `json:"streams"`
		Events   int  `json:"events"`
		Problems []struct {
			Kind    string `json:"kind"`
			Stream  string `json:"stream"`
			Version int    `json:"version"`
			Detail  string `json:"detail"`
		} `json:"problems"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	if got.OK || got.Streams != 5 || got.Events != 13 || len(got.Problems) == 0 || got.Problems[0].Kind == "" {
		t.Fatalf("report %s", b)
	}
}

func TestSealFileIsAppendedAndResynced(t *testing.T) {
	f := standard(t)
	s1 := f.seal()
	// The file lost (a failed write, a rotation): the next seal writes every seal it lacks.
	if err := os.Remove(f.file); err != nil {
		t.Fatal(err)
	}
	f.pay("order5", 2)
	s2 := f.seal()
	seals, err := audit.ReadSealFile(f.file)
	if err != nil {
		t.Fatal(err)
	}
	if len(seals) != 2 || seals[0].Seal.Seq != 1 || seals[1].Seal.Seq != 2 ||
		!bytes.Equal(seals[0].Seal.Digest(), s1.Digest()) || !bytes.Equal(seals[1].Seal.Prev, s1.Digest()) ||
		!bytes.Equal(seals[1].Seal.Digest(), s2.Digest()) {
		t.Fatalf("seal file: %+v", seals)
	}
	if s2.Changed != 1 || s2.Streams != 6 || s1.Streams != 5 || s1.Changed != 5 || s2.Events != s1.Events+2 {
		t.Fatalf("seal 1 %+v, seal 2 %+v", s1.Checkpoint, s2.Checkpoint)
	}
	for _, s := range []audit.Seal{s1, s2} {
		if err := s.Verify(f.pub); err != nil {
			t.Fatal(err)
		}
	}
	// Nothing appended since: a due check does not seal again.
	if _, made, err := f.sealer().SealIfDue(context.Background(), 0); err != nil || made {
		t.Fatalf("seal if due with nothing new: made %t, %v", made, err)
	}
}
