package eventstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/jackc/pgx/v5"
)

// LinkChecker verifies events read from the global log (ReadAll, Subscribe) before a reader
// acts on them outside the database, as the relay publishes them. A stream's events arrive
// spread over batches, so each event is checked against its stream's previous event: remembered
// from an earlier batch when the checker saw it, read from the store otherwise. That covers the
// event's own hash, its link, its version and the chain key's rules, exactly as Verifier.Check
// does for a whole stream. What one event cannot show (a tail cut off, a head moved) is the
// audit's to find.
//
// A stream found broken is recorded in broken_streams like a broken read (ReadVerified), and
// every event of a stream listed there is refused, the later ones included: they link to an
// event that was changed. A LinkChecker is for one reader at a time.
type LinkChecker struct {
	p    *Postgres
	v    Verifier
	last *lru.Cache[string, link]
}

// link is what the next event of a stream is checked against.
type link struct {
	version int64
	hash    []byte
	// keyed: the event is keyed, so no plain one may follow (a valid chain has no plain event
	// after a keyed one, so the last event's own algorithm says it for the whole stream).
	keyed bool
}

// NewLinkChecker returns a checker with the store's Verifier that remembers the last event of
// up to streams streams.
func (p *Postgres) NewLinkChecker(ctx context.Context, streams int) (*LinkChecker, error) {
	v, err := p.Verifier(ctx)
	if err != nil {
		return nil, err
	}
	last, err := lru.New[string, link](max(streams, 1))
	if err != nil {
		return nil, err
	}
	return &LinkChecker{p: p, v: v, last: last}, nil
}

// Broken says from which version a stream's events must not be acted on, and why. From is 1
// for a stream already listed in broken_streams.
type Broken struct {
	From int64
	Err  error
}

// Refuses reports whether e is at or after the break.
func (b Broken) Refuses(e RecordedEvent) bool { return b.Err != nil && e.Version >= b.From }

// Check verifies batch, a run of the global log in order, and returns the broken streams. An
// error means the check could not be made (the database failed); nothing is known then.
func (c *LinkChecker) Check(ctx context.Context, batch []RecordedEvent) (map[string]Broken, error) {
	streams := make([]string, 0, len(batch))
	seen := map[string]bool{}
	var missing []string
	var missingVersions []int64
	for _, e := range batch {
		if seen[e.StreamID] {
			continue
		}
		seen[e.StreamID] = true
		streams = append(streams, e.StreamID)
		if l, ok := c.last.Get(e.StreamID); (!ok || l.version != e.Version-1) && e.Version > 1 {
			missing = append(missing, e.StreamID)
			missingVersions = append(missingVersions, e.Version-1)
		}
	}
	// One round trip: the streams already listed as broken, and the events before the batch's
	// first of each stream the checker does not remember (only what a link needs of them).
	b := &pgx.Batch{}
	b.Queue(`SELECT stream_id, detail FROM broken_streams WHERE stream_id = ANY($1)`, streams)
	b.Queue(`SELECT stream_id, version, hash, hash_alg FROM events
		WHERE (stream_id, version) IN (SELECT * FROM unnest($1::text[], $2::bigint[]))`, missing, missingVersions)
	br := c.p.pool.SendBatch(ctx, b)
	broken := map[string]Broken{}
	var stream, detail string
	rows, err := br.Query()
	if err == nil {
		_, err = pgx.ForEachRow(rows, []any{&stream, &detail}, func() error {
			broken[stream] = Broken{From: 1, Err: fmt.Errorf("eventstore: stream %q is listed as broken: %w: %s", stream, ErrChainBroken, detail)}
			return nil
		})
	}
	if err == nil {
		rows, err = br.Query()
	}
	if err == nil {
		var l link
		var alg string
		_, err = pgx.ForEachRow(rows, []any{&stream, &l.version, &l.hash, &alg}, func() error {
			a, err := parseHashAlg(alg)
			if err != nil {
				return err // a hash_alg the table's CHECK refuses: the row was changed
			}
			l.keyed = a == HashHMACSHA256
			c.last.Add(stream, link{version: l.version, hash: bytes.Clone(l.hash), keyed: l.keyed}) // pgx may reuse the scan buffer
			return nil
		})
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("eventstore: check links: %w", err)
	}
	for _, e := range batch {
		if broken[e.StreamID].Err != nil {
			continue
		}
		prev := link{version: 0, hash: zeroHash}
		if e.Version > 1 {
			l, ok := c.last.Get(e.StreamID)
			if !ok || l.version != e.Version-1 {
				broken[e.StreamID] = Broken{e.Version, c.flag(ctx, e, ProblemSequence, "version %d has no version %d before it", e.Version, e.Version-1)}
				continue
			}
			prev = l
		}
		if problem := c.v.checkEvent(e.StreamID, e, prev.hash, prev.version+1, prev.keyed); problem != nil {
			broken[e.StreamID] = Broken{e.Version, c.flag(ctx, e, problem.Problem, "%s", problem.Detail)}
			continue
		}
		c.last.Add(e.StreamID, link{version: e.Version, hash: e.Hash, keyed: e.HashAlg == HashHMACSHA256})
	}
	return broken, nil
}

// flag records e's stream as broken and returns the error.
func (c *LinkChecker) flag(ctx context.Context, e RecordedEvent, p ChainProblem, format string, args ...any) error {
	err := &ChainError{Stream: e.StreamID, Version: e.Version, Problem: p, Detail: fmt.Sprintf(format, args...)}
	c.last.Remove(e.StreamID)
	c.p.flagBroken(ctx, e.StreamID, err)
	if errors.Is(err, ErrChainKeyMissing) {
		return fmt.Errorf("eventstore: %w (this reader has no AUDIT_CHAIN_KEY)", err)
	}
	return err
}
