package audit

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/paymentledger/ledger/eventstore"
	"github.com/paymentledger/ledger/internal/db"
)

// ErrSealing is returned when another process holds the seal lock: it is making a seal now.
var ErrSealing = errors.New("audit: another process is making a seal")

// Sealer makes seals: it signs a checkpoint of the event history with the audit signing key,
// stores it in the database (audit_seals, with its changed leaves in audit_seal_leaves) and
// appends it to the seal file, the copy meant to be shipped off the machine.
//
// The history is read in a READ ONLY, REPEATABLE READ transaction (it takes no transaction ID,
// so subscribers are not held back however long the read takes); the seal is written in a
// second, short transaction. A PostgreSQL advisory lock held across both keeps sealers from
// interleaving. A Sealer is safe for concurrent use.
type Sealer struct {
	pool *pgxpool.Pool
	key  ed25519.PrivateKey
	file string
	now  func() time.Time
}

// NewSealer returns a sealer signing with key and appending to file ("": no file).
func NewSealer(pool *pgxpool.Pool, key ed25519.PrivateKey, file string) *Sealer {
	return &Sealer{pool: pool, key: key, file: file, now: time.Now}
}

// Seal makes a seal of the history as of now: every event committed when it reads the log
// (see Checkpoint). It returns ErrSealing when another process is sealing. When the database
// took the seal but the file could not be written, it returns the seal and the error; the next
// seal appends every seal the file lacks.
func (s *Sealer) Seal(ctx context.Context) (Seal, error) {
	seal, _, err := s.seal(ctx, 0, false)
	return seal, err
}

// SealIfDue seals unless the last seal is younger than minAge or no stream's head moved since
// it (made is false then). Several paymentd instances each call it on their own schedule; under
// the lock the first one seals and the others find its seal.
func (s *Sealer) SealIfDue(ctx context.Context, minAge time.Duration) (seal Seal, made bool, err error) {
	return s.seal(ctx, minAge, true)
}

func (s *Sealer) seal(ctx context.Context, minAge time.Duration, ifDue bool) (seal Seal, made bool, err error) {
	ran, err := db.TryLocked(ctx, s.pool, db.LockAuditSeal, func(conn *pgxpool.Conn) error {
		seal, made, err = s.sealLocked(ctx, conn, minAge, ifDue)
		return err
	})
	if !ran && err == nil {
		return Seal{}, false, ErrSealing
	}
	return seal, made, err
}

// sealLocked is seal under the seal lock, held by conn.
func (s *Sealer) sealLocked(ctx context.Context, conn *pgxpool.Conn, minAge time.Duration, ifDue bool) (Seal, bool, error) {
	var (
		last  *Seal
		cov   eventstore.Coverage
		heads []eventstore.HeadAt
		young bool
	)
	err := pgx.BeginTxFunc(ctx, conn, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		var err error
		if last, err = lastSeal(ctx, tx); err != nil {
			return err
		}
		// A seal is chained to the last one: a row planted in audit_seals must not become
		// the base of the next signed seal (nor stop sealing with a position of its own).
		if last != nil {
			if err := last.Verify(s.key.Public().(ed25519.PublicKey)); err != nil {
				return fmt.Errorf("the last seal in the database (seal %d) does not verify with this signing key, so no seal is chained to it (paymentctl audit tells more): %w", last.Seq, err)
			}
		}
		if young = ifDue && last != nil && s.now().Sub(last.SealedAt) < minAge; young {
			return nil
		}
		if cov, err = eventstore.SnapshotCoverage(ctx, tx); err != nil {
			return err
		}
		heads, err = eventstore.HeadsAsOf(ctx, tx, cov.Position)
		return err
	})
	if err != nil {
		return Seal{}, false, fmt.Errorf("audit: seal: read history: %w", err)
	}
	if young {
		return Seal{}, false, s.syncFile(ctx, conn)
	}

	c := Checkpoint{Seq: 1, Prev: make([]byte, sha256.Size), Position: cov.Position, Running: cov.Running, SealedAt: s.now()}
	if last != nil {
		if cov.Position.Less(last.Position) {
			return Seal{}, false, fmt.Errorf("audit: seal: the log's position %s is before the last seal's %s", cov.Position, last.Position)
		}
		c.Seq, c.Prev = last.Seq+1, last.Digest()
	}
	// The heads that moved since the last seal: those it did not cover (its coverage is a
	// prefix of every stream, so a head it covered is still its head).
	leaves := make([]Leaf, len(heads))
	var changed []Leaf
	for i, h := range heads {
		leaves[i] = Leaf{Stream: h.Stream, Version: h.Version, Hash: h.Hash}
		c.Events += h.Version
		if last == nil || !last.Covers(h.Position) {
			changed = append(changed, leaves[i])
		}
	}
	if ifDue && last != nil && len(changed) == 0 {
		return Seal{}, false, s.syncFile(ctx, conn)
	}
	c.Streams, c.Changed = int64(len(leaves)), int64(len(changed))
	c.Root, c.ChangedRoot = MerkleRoot(leaves), MerkleRoot(changed)
	seal := sign(c, s.key)
	line, err := json.Marshal(seal)
	if err != nil {
		return Seal{}, false, fmt.Errorf("audit: seal: %w", err)
	}

	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO audit_seals (seq, seal) VALUES ($1, $2)`, seal.Seq, string(line)); err != nil {
			return err
		}
		rows := make([][]any, len(changed))
		for i, l := range changed {
			rows[i] = []any{seal.Seq, l.Stream, l.Version, l.Hash}
		}
		_, err := tx.CopyFrom(ctx, pgx.Identifier{"audit_seal_leaves"}, []string{"seal_seq", "stream_id", "version", "hash"}, pgx.CopyFromRows(rows))
		return err
	})
	if err != nil {
		return Seal{}, false, fmt.Errorf("audit: seal %d: store: %w", seal.Seq, err)
	}
	if err := s.syncFile(ctx, conn); err != nil {
		return seal, true, err
	}
	return seal, true, nil
}

// lastSeal is the seal with the highest seq in the database, nil when there is none.
func lastSeal(ctx context.Context, tx pgx.Tx) (*Seal, error) {
	var raw []byte
	err := tx.QueryRow(ctx, `SELECT seal::text FROM audit_seals ORDER BY seq DESC LIMIT 1`).Scan(&raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var seal Seal
	if err := json.Unmarshal(raw, &seal); err != nil {
		return nil, fmt.Errorf("the last seal in the database does not parse: %w", err)
	}
	return &seal, nil
}

// syncFile appends to the seal file every seal of the database after the file's last one, as
// stored, one per line, and syncs it. Run under the seal lock, so two sealers sharing a file do
// not write the same seal twice.
func (s *Sealer) syncFile(ctx context.Context, conn *pgxpool.Conn) error {
	if s.file == "" {
		return nil
	}
	var after int64
	existing, err := ReadSealFile(s.file)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return err
	}
	for _, fs := range existing {
		if fs.Err == nil {
			after = max(after, fs.Seal.Seq)
		}
	}
	rows, err := conn.Query(ctx, `SELECT seal::text FROM audit_seals WHERE seq > $1 ORDER BY seq`, after)
	if err != nil {
		return fmt.Errorf("audit: seal file: %w", err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(lines) == 0 {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(s.file), 0o700); err != nil {
		return fmt.Errorf("audit: seal file: %w", err)
	}
	f, err := os.OpenFile(s.file, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("audit: seal file: %w", err)
	}
	var buf []byte
	for _, l := range lines {
		buf = append(append(buf, l...), '\n')
	}
	_, err = f.Write(buf)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("audit: seal file %s: %w", s.file, err)
	}
	return nil
}
