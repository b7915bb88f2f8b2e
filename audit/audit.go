// Package audit owns the checks behind `paymentctl audit` and the signed seals of the event
// history.
//
// The audit reads every stream, in big ordered batches inside one REPEATABLE READ snapshot, and
// proves for each: its hash chain holds (every hash, every link, no downgrade from keyed to
// plain), its last event is its recorded head (nothing cut off), its events are a history the
// state machine allows, and it agrees with every seal that covers it. It then checks the books
// (every journal entry balances, every merchant's trial balance is zero, every seller's wallet
// equals its payable account and its entries) and, when given a DriftChecker, that every read
// model equals a fresh replay. Each problem names its stream and version where it has them.
//
// Seals (Sealer) answer what the hash chain cannot: someone who can write to the database and
// recompute hashes (a superuser; with AUDIT_CHAIN_KEY, only someone who also has that key) can
// rewrite a stream consistently. A seal is an ed25519 signature over a checkpoint of the whole
// history (Checkpoint); the private key stays off the database machine and the seals are also
// appended to a file meant to be shipped elsewhere, so a rewrite after a seal, a deleted
// stream, a deleted seal, are all caught with the public key alone.
package audit

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/paymentledger/ledger/eventstore"
)

// VerifierSource gives the event store's chain verifier (with its chain key, if any):
// *eventstore.Postgres.
type VerifierSource interface {
	Verifier(ctx context.Context) (eventstore.Verifier, error)
}

// Options adjust an audit.
type Options struct {
	// PublicKey verifies the seals. Required when there are seals (in the database or in
	// SealFile): an audit that cannot check them fails rather than passing without them.
	PublicKey ed25519.PublicKey
	// SealFile is a copy of the seal file (the one shipped off the machine) whose seals are
	// verified too; a seal in it that the database lacks, or holds differently, is a finding.
	// Empty: only the database's seals.
	SealFile string
	// Drift, when set, compares the read models with a fresh replay.
	Drift DriftChecker
	// Progress, when set, is called after each batch of streams.
	Progress func(Progress)
	// Now is the moment of the trial balance and wallet checks. Default time.Now.
	Now func() time.Time
	// BatchSize is the number of streams read per batch. Default 2000.
	BatchSize int
	// HistoryOnly checks the event history alone: every chain, head and state-machine history,
	// and the seals when PublicKey is set (without it, seals are not checked rather than
	// refused). No books, no drift. It is what a replay proves before it puts rebuilt tables
	// live.
	HistoryOnly bool
}

// Progress tells how far an audit has read.
type Progress struct {
	Streams      int64 // streams checked so far
	TotalStreams int64 // stream heads in the database when the audit began
	Events       int64 // events checked so far
	Elapsed      time.Duration
}

// Auditor runs audits of one database. It is safe for concurrent use; each Run is independent.
type Auditor struct {
	pool  *pgxpool.Pool
	store VerifierSource
	opts  Options
}

// New returns an auditor of the database behind pool, whose event store is store.
func New(pool *pgxpool.Pool, store VerifierSource, opts Options) *Auditor {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = 2000
	}
	return &Auditor{pool: pool, store: store, opts: opts}
}

// Run audits the database. The problems found are in the report (OK when there are none); an
// error means the audit could not be completed (the database failed, the seal file cannot be
// read, there are seals and no public key, ctx ended), and no report can be trusted then.
func (a *Auditor) Run(ctx context.Context) (Report, error) {
	r := &run{Auditor: a, missing: map[string]*missingStream{}, start: time.Now()}
	v, err := a.store.Verifier(ctx)
	if err != nil {
		if !errors.Is(err, eventstore.ErrChainBroken) {
			return Report{}, err
		}
		r.problem(Problem{Kind: KindChainBroken, Detail: err.Error()})
	}
	r.verifier = v

	var fileSeals []FileSeal
	if a.opts.SealFile != "" {
		if fileSeals, err = ReadSealFile(a.opts.SealFile); err != nil {
			return Report{}, err
		}
	}
	// The books are checked beside the stream pass: they keep the database busy while the
	// stream checks keep a core busy.
	bookCtx, stopBooks := context.WithCancel(ctx)
	defer stopBooks()
	type bookResult struct {
		problems []Problem
		err      error
	}
	booksDone := make(chan bookResult, 1)
	go func() {
		if a.opts.HistoryOnly {
			booksDone <- bookResult{}
			return
		}
		ps, err := books(bookCtx, a.pool, a.opts.Now())
		booksDone <- bookResult{ps, err}
	}()
	err = pgx.BeginTxFunc(ctx, a.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		if err := r.loadSeals(ctx, tx, fileSeals); err != nil {
			return err
		}
		if err := r.checkStoredLeaves(ctx, tx); err != nil {
			return err
		}
		if err := r.history(ctx, tx); err != nil {
			return err
		}
		return r.readModelStreams(ctx, tx)
	})
	if err != nil {
		return Report{}, fmt.Errorf("audit: %w", err)
	}
	r.finishHistory()
	br := <-booksDone
	if br.err != nil {
		return Report{}, fmt.Errorf("audit: books: %w", br.err)
	}
	r.problems = append(r.problems, br.problems...)
	if a.opts.Drift != nil && !a.opts.HistoryOnly {
		drift, err := a.opts.Drift.Drift(ctx)
		switch {
		case err != nil && (len(r.problems) == 0 || ctx.Err() != nil):
			return Report{}, fmt.Errorf("audit: projection drift: %w", err)
		case err != nil:
			// A history with problems may not replay at all (an edited amount that no longer
			// adds up); that is one more finding, not a failed audit.
			r.problem(Problem{Kind: KindProjectionDrift, Detail: "the read models could not be compared with a replay of this history: " + err.Error()})
		}
		r.problems = append(r.problems, drift...)
	}
	sortProblems(r.problems)
	if r.problems == nil {
		r.problems = []Problem{}
	}
	return Report{OK: len(r.problems) == 0, Streams: r.streams, Events: r.events, Problems: r.problems}, nil
}

// run is the state of one audit.
type run struct {
	*Auditor
	verifier eventstore.Verifier
	start    time.Time
	problems []Problem
	streams  int64
	events   int64
	keyed    int64 // events with keyed hashes

	// dbChain is the database's seals whose signatures verify, by seq; fileOnly the seal
	// file's valid seals the database lacks or holds differently. full lists the seals whose
	// Merkle root is recomputed from history (the newest, and those whose stored leaves
	// cannot be relied on), each collecting its leaves during the pass.
	dbChain  []*knownSeal
	bySeq    map[int64]*knownSeal
	fileOnly []*knownSeal
	full     []*knownSeal

	missing map[string]*missingStream
}

// knownSeal is a seal whose signature verified, with what the audit learnt about it.
type knownSeal struct {
	Seal
	source    string // "database" or "seal file"
	leavesOK  bool   // its stored leaves hash to its signed ChangedRoot
	gapBefore bool   // the database's chain lacks the seal before it
	leaves    []Leaf // collected for a full check
}

func (k *knownSeal) name() string {
	if k.source == "seal file" {
		return fmt.Sprintf("seal %d (in the seal file only)", k.Seq)
	}
	return fmt.Sprintf("seal %d", k.Seq)
}

// missingStream gathers the evidence that names a stream which has no events.
type missingStream struct {
	version  int64
	evidence []string
}

func (r *run) problem(p Problem) { r.problems = append(r.problems, p) }

func (r *run) missingStream(stream string, version int64, evidence string) {
	m := r.missing[stream]
	if m == nil {
		m = &missingStream{}
		r.missing[stream] = m
	}
	m.version = max(m.version, version)
	m.evidence = append(m.evidence, evidence)
}

// loadSeals reads the database's seals, verifies them and the seal file's, and decides which
// seals history is checked against and how.
func (r *run) loadSeals(ctx context.Context, tx pgx.Tx, fileSeals []FileSeal) error {
	rows, err := tx.Query(ctx, `SELECT seq, seal::text FROM audit_seals ORDER BY seq`)
	if err != nil {
		return err
	}
	type row struct {
		seq int64
		raw string
	}
	dbRows, err := pgx.CollectRows(rows, func(cr pgx.CollectableRow) (row, error) {
		var x row
		return x, cr.Scan(&x.seq, &x.raw)
	})
	if err != nil {
		return err
	}
	if r.opts.HistoryOnly && r.opts.PublicKey == nil {
		r.bySeq = map[int64]*knownSeal{}
		return nil
	}
	if len(dbRows)+len(fileSeals) > 0 && r.opts.PublicKey == nil {
		return fmt.Errorf("there are %d seals in the database and %d in the seal file, and no public key (AUDIT_PUBLIC_KEY or --public-key) to verify them",
			len(dbRows), len(fileSeals))
	}
	sealProblem := func(format string, args ...any) {
		r.problem(Problem{Kind: KindSealMismatch, Detail: fmt.Sprintf(format, args...)})
	}

	r.bySeq = map[int64]*knownSeal{}
	for _, x := range dbRows {
		var s Seal
		if err := json.Unmarshal([]byte(x.raw), &s); err != nil {
			sealProblem("database seal %d does not parse: %v", x.seq, err)
			continue
		}
		if s.Seq != x.seq {
			sealProblem("database seal row %d holds seal %d", x.seq, s.Seq)
			continue
		}
		if err := s.Verify(r.opts.PublicKey); err != nil {
			sealProblem("database %v", err)
			continue
		}
		k := &knownSeal{Seal: s, source: "database"}
		r.dbChain = append(r.dbChain, k)
		r.bySeq[s.Seq] = k
	}
	// The chain: seals numbered from 1, each linked to the one before. A gap is a seal deleted
	// from the database (or one whose row no longer verifies, reported above).
	for i, k := range r.dbChain {
		prevSeq := int64(0)
		if i > 0 {
			prevSeq = r.dbChain[i-1].Seq
		}
		switch {
		case k.Seq != prevSeq+1:
			k.gapBefore = true
			sealProblem("seals %d to %d are missing from the database (seal %d follows seal %d)", prevSeq+1, k.Seq-1, k.Seq, prevSeq)
		case i > 0 && !slices.Equal(k.Prev, r.dbChain[i-1].Digest()):
			k.gapBefore = true
			sealProblem("seal %d does not link to the database's seal %d: that one was replaced", k.Seq, prevSeq)
		case i == 0 && !slices.Equal(k.Prev, make([]byte, len(k.Prev))):
			k.gapBefore = true
			sealProblem("seal 1 links to a previous seal")
		case i > 0 && k.Position.Less(r.dbChain[i-1].Position):
			sealProblem("seal %d's position %s is before seal %d's %s", k.Seq, k.Position, prevSeq, r.dbChain[i-1].Position)
		}
	}

	for _, fs := range fileSeals {
		if fs.Err != nil {
			sealProblem("seal file %s line %d does not parse: %v", r.opts.SealFile, fs.Line, fs.Err)
			continue
		}
		s := fs.Seal
		if err := s.Verify(r.opts.PublicKey); err != nil {
			sealProblem("seal file line %d: %v", fs.Line, err)
			continue
		}
		db, ok := r.bySeq[s.Seq]
		switch {
		case ok && slices.Equal(db.Digest(), s.Digest()):
			continue
		case ok:
			sealProblem("seal %d in the seal file (position %s, sealed at %s) differs from the database's seal %d (position %s): the database's was replaced",
				s.Seq, s.Position, s.SealedAt.Format(time.RFC3339), s.Seq, db.Position)
		default:
			sealProblem("seal %d (position %s, sealed at %s) is in the seal file but not in the database: it was deleted",
				s.Seq, s.Position, s.SealedAt.Format(time.RFC3339))
		}
		if !slices.ContainsFunc(r.fileOnly, func(k *knownSeal) bool { return slices.Equal(k.Digest(), s.Digest()) }) {
			r.fileOnly = append(r.fileOnly, &knownSeal{Seal: s, source: "seal file"})
		}
	}
	return nil
}

// checkStoredLeaves recomputes each database seal's changed root from its stored leaves. Where
// they differ the leaves were altered: the differences they show are still reported, marked as
// not authoritative, and the seal's full root is checked against history instead.
func (r *run) checkStoredLeaves(ctx context.Context, tx pgx.Tx) error {
	rows, err := tx.Query(ctx, `SELECT seal_seq, stream_id, version, hash FROM audit_seal_leaves ORDER BY seal_seq`)
	if err != nil {
		return err
	}
	groups := map[int64][]Leaf{}
	var (
		seq int64
		l   Leaf
	)
	_, err = pgx.ForEachRow(rows, []any{&seq, &l.Stream, &l.Version, &l.Hash}, func() error {
		groups[seq] = append(groups[seq], Leaf{Stream: l.Stream, Version: l.Version, Hash: l.Hash})
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range r.dbChain {
		leaves := groups[k.Seq]
		k.leavesOK = int64(len(leaves)) == k.Changed && slices.Equal(MerkleRoot(leaves), k.ChangedRoot)
		if !k.leavesOK {
			r.problem(Problem{Kind: KindSealMismatch, Detail: fmt.Sprintf(
				"the leaves stored for seal %d were altered: %d leaves whose root is not the signed root of its %d changed heads; the signed root is authoritative, differences shown by these leaves are marked",
				k.Seq, len(leaves), k.Changed)})
		}
	}
	// The seals history is recomputed against: the newest of each source (a deleted or
	// replaced newest seal shows in the file's), every seal of the file alone, and every
	// database seal whose stored leaves cannot be relied on.
	full := map[*knownSeal]bool{}
	if n := len(r.dbChain); n > 0 {
		full[r.dbChain[n-1]] = true
	}
	for _, k := range r.fileOnly {
		full[k] = true
	}
	for _, k := range r.dbChain {
		if !k.leavesOK || k.gapBefore {
			full[k] = true
		}
	}
	for k := range full {
		r.full = append(r.full, k)
	}
	slices.SortFunc(r.full, func(a, b *knownSeal) int { return int(a.Seq - b.Seq) })
	return nil
}

// streamData is everything the audit read about one stream.
type streamData struct {
	id     string
	events []eventstore.RecordedEvent
	head   *eventstore.Head
	leaves []storedLeaf
}

type storedLeaf struct {
	seq     int64
	version int64
	hash    []byte
}

// batch is one page of streams: their heads, and the events and seal leaves of the same range
// of stream IDs.
type batch struct {
	heads  []eventstore.StreamHead
	events []eventstore.RecordedEvent
	leaves map[string][]storedLeaf
	err    error
}

// history reads every stream in batches of heads, with the events and seal leaves of the same
// range of stream IDs, and checks each stream. The next batch is read while the current one is
// checked: the database and the checks (hashing, decoding, the state machine) each keep a core
// busy.
func (r *run) history(ctx context.Context, tx pgx.Tx) error {
	var total int64
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM event_streams`).Scan(&total); err != nil {
		return err
	}
	readCtx, stop := context.WithCancel(ctx)
	defer stop()
	batches := make(chan batch, 1)
	go func() {
		defer close(batches)
		var after *string
		for {
			var b batch
			b.heads, b.err = eventstore.ReadHeads(readCtx, tx, after, r.opts.BatchSize)
			var through *string
			if b.err == nil && len(b.heads) == r.opts.BatchSize {
				through = &b.heads[len(b.heads)-1].Stream
			}
			if b.err == nil {
				b.events, b.err = eventstore.ReadRange(readCtx, tx, after, through)
			}
			if b.err == nil {
				b.leaves, b.err = r.readLeaves(readCtx, tx, after, through)
			}
			select {
			case batches <- b:
			case <-readCtx.Done():
				return
			}
			if b.err != nil || through == nil {
				return
			}
			after = through
		}
	}()
	// On an early return, stop the reader and wait for it: tx must be free before it is used
	// again or rolled back.
	defer func() {
		stop()
		for range batches {
		}
	}()

	for b := range batches {
		if b.err != nil {
			return b.err
		}
		byID := map[string]*streamData{}
		get := func(id string) *streamData {
			sd := byID[id]
			if sd == nil {
				sd = &streamData{id: id}
				byID[id] = sd
			}
			return sd
		}
		for i := range b.heads {
			get(b.heads[i].Stream).head = &b.heads[i].Head
		}
		for i := 0; i < len(b.events); {
			j := i + 1
			for j < len(b.events) && b.events[j].StreamID == b.events[i].StreamID {
				j++
			}
			get(b.events[i].StreamID).events = b.events[i:j]
			i = j
		}
		for id, ls := range b.leaves {
			get(id).leaves = ls
		}
		ids := make([]string, 0, len(byID))
		for id := range byID {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		for _, id := range ids {
			r.checkStream(byID[id])
		}
		r.streams += int64(len(ids))
		r.events += int64(len(b.events))
		if r.opts.Progress != nil {
			r.opts.Progress(Progress{Streams: r.streams, TotalStreams: total, Events: r.events, Elapsed: time.Since(r.start)})
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return nil
}

func (r *run) readLeaves(ctx context.Context, tx pgx.Tx, after, through *string) (map[string][]storedLeaf, error) {
	rows, err := tx.Query(ctx, `SELECT stream_id, seal_seq, version, hash FROM audit_seal_leaves
		WHERE ($1::text IS NULL OR stream_id > $1) AND ($2::text IS NULL OR stream_id <= $2)
		ORDER BY stream_id, seal_seq`, after, through)
	if err != nil {
		return nil, err
	}
	out := map[string][]storedLeaf{}
	var (
		id string
		l  storedLeaf
	)
	_, err = pgx.ForEachRow(rows, []any{&id, &l.seq, &l.version, &l.hash}, func() error {
		out[id] = append(out[id], storedLeaf{seq: l.seq, version: l.version, hash: l.hash})
		return nil
	})
	return out, err
}

// checkStream runs every per-stream check.
func (r *run) checkStream(sd *streamData) {
	for _, e := range sd.events {
		if e.HashAlg == eventstore.HashHMACSHA256 {
			r.keyed++
		}
	}
	r.checkChain(sd)
	if len(sd.events) > 0 {
		r.problems = append(r.problems, checkTransitions(sd.id, sd.events)...)
	}
	r.checkSeals(sd)
}

// checkChain verifies the chain and the head, and names a head without events as missing.
func (r *run) checkChain(sd *streamData) {
	if sd.head == nil && len(sd.events) == 0 {
		return // known from seal leaves only; checkSeals reports it
	}
	if len(sd.events) == 0 {
		if sd.head.Version > 0 {
			r.missingStream(sd.id, sd.head.Version, fmt.Sprintf("its head is at version %d", sd.head.Version))
		}
		return
	}
	if sd.head == nil {
		r.problem(Problem{Kind: KindChainBroken, Stream: sd.id, Detail: fmt.Sprintf("%d events and no head row (event_streams)", len(sd.events))})
	}
	for _, ce := range r.verifier.Check(sd.id, sd.events, sd.head) {
		p := Problem{Stream: sd.id, Version: ce.Version, Detail: ce.Detail}
		switch ce.Problem {
		case eventstore.ProblemHash, eventstore.ProblemMetadata, eventstore.ProblemHeadHash, eventstore.ProblemDowngrade:
			// A downgraded event's hash is not the keyed hash it must have.
			p.Kind = KindHashMismatch
		case eventstore.ProblemTailMissing:
			p.Kind = KindTailMissing
			p.Version = sd.events[len(sd.events)-1].Version + 1
			gone := fmt.Sprintf("version %d is gone", p.Version)
			if p.Version < sd.head.Version {
				gone = fmt.Sprintf("versions %d to %d are gone", p.Version, sd.head.Version)
			}
			p.Detail = ce.Detail + ": " + gone
		default:
			p.Kind = KindChainBroken
		}
		r.problem(p)
	}
	for i := 1; i < len(sd.events); i++ {
		if !sd.events[i-1].Position.Less(sd.events[i].Position) {
			r.problem(Problem{Kind: KindChainBroken, Stream: sd.id, Version: sd.events[i].Version, Detail: fmt.Sprintf(
				"at position %s, not after version %d's %s: its place in the global log was changed", sd.events[i].Position, sd.events[i-1].Version, sd.events[i-1].Position)})
			return
		}
	}
}

// headAsOf is the stream's last event the seal covers (ok false: none).
func headAsOf(events []eventstore.RecordedEvent, seal *knownSeal) (eventstore.RecordedEvent, bool) {
	var head eventstore.RecordedEvent
	found := false
	for _, e := range events {
		if seal.Covers(e.Position) {
			head, found = e, true
		}
	}
	return head, found
}

// checkSeals compares the stream with every seal: each stored leaf must be the stream's head as
// of its seal's position; each batch of events a complete seal covers must have a leaf in it;
// and the seals checked in full collect the stream's head as of their positions.
func (r *run) checkSeals(sd *streamData) {
	for _, l := range sd.leaves {
		k := r.bySeq[l.seq]
		if k == nil {
			continue // a seal that does not verify: reported already
		}
		note := ""
		if !k.leavesOK {
			note = " (from leaves that were altered)"
		}
		if len(sd.events) == 0 {
			r.missingStream(sd.id, l.version, fmt.Sprintf("seal %d sealed it at version %d%s", l.seq, l.version, note))
			continue
		}
		head, ok := headAsOf(sd.events, k)
		switch {
		case !ok:
			r.problem(Problem{Kind: KindSealMismatch, Stream: sd.id, Version: l.version, Detail: fmt.Sprintf(
				"seal %d sealed version %d; history has no event of the stream at or before its position %s%s", l.seq, l.version, k.Position, note)})
		case head.Version != l.version:
			r.problem(Problem{Kind: KindSealMismatch, Stream: sd.id, Version: l.version, Detail: fmt.Sprintf(
				"seal %d sealed version %d; history at its position %s ends at version %d: events were removed from or added to the sealed past%s",
				l.seq, l.version, k.Position, head.Version, note)})
		case !slices.Equal(head.Hash, l.hash):
			r.problem(Problem{Kind: KindSealMismatch, Stream: sd.id, Version: l.version, Detail: fmt.Sprintf(
				"seal %d sealed version %d with hash %x; it now has hash %x: the stream was rewritten up to there%s",
				l.seq, l.version, l.hash, head.Hash, note)})
		}
	}

	// Every seal whose changed leaves are trustworthy and complete (leaves intact, previous
	// seal present) records the head of every stream that got events since the previous seal.
	if len(r.dbChain) > 0 && len(sd.events) > 0 {
		has := map[int64]bool{}
		for _, l := range sd.leaves {
			has[l.seq] = true
		}
		reported := map[int64]bool{}
		for _, e := range sd.events {
			i := sort.Search(len(r.dbChain), func(i int) bool { return r.dbChain[i].Covers(e.Position) })
			if i == len(r.dbChain) {
				break // after the newest seal
			}
			k := r.dbChain[i]
			if !k.leavesOK || k.gapBefore || has[k.Seq] || reported[k.Seq] {
				continue
			}
			reported[k.Seq] = true
			r.problem(Problem{Kind: KindSealMismatch, Stream: sd.id, Version: e.Version, Detail: fmt.Sprintf(
				"version %d at position %s is at or before seal %d's position %s, but that seal records no head of this stream since seal %d: events were inserted into the sealed past",
				e.Version, e.Position, k.Seq, k.Position, k.Seq-1)})
		}
	}

	for _, k := range r.full {
		if head, ok := headAsOf(sd.events, k); ok {
			k.leaves = append(k.leaves, Leaf{Stream: sd.id, Version: head.Version, Hash: head.Hash})
		}
	}
}

// finishHistory reports what the stream pass gathered: the full seal checks, missing
// streams, keyed events without an activation record.
func (r *run) finishHistory() {
	for _, k := range r.full {
		var events int64
		for _, l := range k.leaves {
			events += l.Version
		}
		root := MerkleRoot(k.leaves)
		if int64(len(k.leaves)) != k.Streams || events != k.Events || !slices.Equal(root, k.Root) {
			r.problem(Problem{Kind: KindSealMismatch, Detail: fmt.Sprintf(
				"history as of %s's position %s (%d streams, %d events) does not match its signed root (%d streams, %d events)",
				k.name(), k.Position, len(k.leaves), events, k.Streams, k.Events)})
		}
		k.leaves = nil
	}
	ids := make([]string, 0, len(r.missing))
	for id := range r.missing {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		m := r.missing[id]
		r.problem(Problem{Kind: KindStreamMissing, Stream: id, Version: m.version, Detail: "the stream has no events, but " + strings.Join(m.evidence, "; ")})
	}
	if _, activated := r.verifier.Activation(); r.verifier.Keyed() && !activated && r.keyed > 0 {
		r.problem(Problem{Kind: KindChainBroken, Detail: fmt.Sprintf(
			"%d events have keyed hashes, but the chain key has no activation record: it was deleted, so plain events after the key's activation cannot be told from downgrades", r.keyed)})
	}
}

// readModelStreams names the streams that read model rows point to and that have no events.
// Read in the same snapshot as the events: a projection writes a row only after its event
// committed, so a row whose stream is absent from the snapshot has lost its stream.
func (r *run) readModelStreams(ctx context.Context, tx pgx.Tx) error {
	rows, err := tx.Query(ctx, `
		SELECT 'payment_orders', 'payment-' || p.order_id FROM payment_orders p
		 WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.stream_id = 'payment-' || p.order_id)
		UNION ALL
		SELECT 'ledger_orders', 'payment-' || l.order_id FROM ledger_orders l
		 WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.stream_id = 'payment-' || l.order_id)
		UNION ALL
		SELECT 'merchants', 'merchant-' || m.merchant_id FROM merchants m
		 WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.stream_id = 'merchant-' || m.merchant_id)`)
	if err != nil {
		return err
	}
	var table, stream string
	_, err = pgx.ForEachRow(rows, []any{&table, &stream}, func() error {
		r.missingStream(stream, 0, "the read model "+table+" has a row of it")
		return nil
	})
	return err
}
