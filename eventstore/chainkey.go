package eventstore

import (
	"context"
	"crypto/hmac"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// The chain key's activation (migrations/sql/0012_chain_key.sql: event_chain_keys).
//
// A keyed store's first append records, in a transaction of its own, the transaction ID after
// which every event must be keyed, with a MAC under the key. Every keyed append starts after
// that commit, so its transaction ID is newer; events of older transactions (appended before
// the key was set, or by a writer still running without it when the key arrived) keep plain
// hashes and still verify. Without the key nobody can write a record that verifies, so the
// activation cannot be moved forward to excuse a downgrade; deleting the record leaves keyed
// events without one, which the audit reports, and a store that then re-activates the key
// later finds keyed events before its activation (ProblemKeyedEarly).

// Verifier returns the store's chain verifier: plain for a store without a chain key; with the
// key and its activation otherwise. The activation is read from the database (once, then kept:
// the record never changes). An activation record that does not verify is an error wrapping
// ErrChainBroken, and a record of another key is an error too; the Verifier returned with
// either still checks hashes with the key, without the activation rule.
func (p *Postgres) Verifier(ctx context.Context) (Verifier, error) {
	if p.key.IsZero() {
		return Verifier{}, nil
	}
	v := Verifier{key: p.key}
	pos, found, err := p.activate(ctx, false)
	if err != nil {
		return v, err
	}
	if found {
		v.activated, v.activation = true, pos
	}
	return v, nil
}

// activate returns the store's chain key activation (found false: none), creating it first
// when create is set and there is none.
func (p *Postgres) activate(ctx context.Context, create bool) (Position, bool, error) {
	p.activationMu.Lock()
	defer p.activationMu.Unlock()
	if p.activation != nil {
		return *p.activation, true, nil
	}
	pos, found, err := p.readActivation(ctx)
	if err != nil || (!found && !create) {
		return pos, found, err
	}
	if !found {
		// Two stores activating at once: the second insert waits for the first and does
		// nothing; both then read the first's record.
		err := pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
			var xid uint64
			if err := tx.QueryRow(ctx, `SELECT pg_current_xact_id()`).Scan(&xid); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO event_chain_keys (key_id, activated_after, mac) VALUES ($1, $2, $3)
				ON CONFLICT (key_id) DO NOTHING`, p.key.ID(), xid, p.key.activationMAC(xid))
			return err
		})
		if err != nil {
			return Position{}, false, fmt.Errorf("eventstore: activate chain key %s: %w", p.key.ID(), err)
		}
		if pos, found, err = p.readActivation(ctx); err != nil {
			return pos, found, err
		}
		if !found {
			return Position{}, false, fmt.Errorf("eventstore: activate chain key %s: the record is gone right after it was written", p.key.ID())
		}
	}
	p.activation = &pos
	return pos, true, nil
}

// readActivation reads and checks the activation record of the store's key. A record of
// another key means this history was keyed with a key the store does not have.
func (p *Postgres) readActivation(ctx context.Context) (Position, bool, error) {
	rows, err := p.pool.Query(ctx, `SELECT key_id, activated_after, mac FROM event_chain_keys ORDER BY activated_after`)
	if err != nil {
		return Position{}, false, fmt.Errorf("eventstore: read chain key activation: %w", err)
	}
	var (
		id    string
		after uint64
		mac   []byte
		pos   Position
		found bool
		other []string
	)
	_, err = pgx.ForEachRow(rows, []any{&id, &after, &mac}, func() error {
		if id != p.key.ID() {
			other = append(other, id)
			return nil
		}
		if !hmac.Equal(mac, p.key.activationMAC(after)) {
			return fmt.Errorf("%w: the activation record of chain key %s does not verify: it was altered", ErrChainBroken, id)
		}
		pos, found = Position{Transaction: after}, true
		return nil
	})
	if err != nil {
		return Position{}, false, fmt.Errorf("eventstore: read chain key activation: %w", err)
	}
	if len(other) > 0 {
		return pos, found, fmt.Errorf("eventstore: this history was keyed with chain key %v, and the configured key is %s: a chain key cannot be changed once it keyed events", other, p.key.ID())
	}
	return pos, found, nil
}
