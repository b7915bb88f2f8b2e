package audit

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/paymentledger/ledger/eventstore"
)

// Checkpoint is what a seal signs: the history up to Position of the global log.
//
//   - Seq numbers seals from 1; Prev is the digest of seal Seq-1 (32 zero bytes for the first),
//     so seals form a chain and one missing from the middle is noticed.
//   - Position and Running say which events the seal covers: every event at or before Position
//     except those of the transactions in Running, still running when the seal read the log
//     (their events sort before Position once committed, but the seal did not see them). A
//     stream's head as of the seal is its last covered event.
//   - Streams and Events count the streams with a covered event and those events; Root is the
//     Merkle root (MerkleRoot) over every such stream's head as of the seal.
//   - Changed and ChangedRoot are the number and the Merkle root of the heads that moved since
//     the previous seal's position (every head for the first seal). The database keeps those
//     leaves (audit_seal_leaves), so an audit can name the stream that differs from a seal, and
//     can tell when the stored leaves themselves were altered.
type Checkpoint struct {
	Seq         int64
	Prev        []byte
	Position    eventstore.Position
	Running     []uint64 // ascending
	Streams     int64
	Events      int64
	Root        []byte
	Changed     int64
	ChangedRoot []byte
	SealedAt    time.Time
	KeyID       string // KeyID of the public key that verifies the signature
}

// Seal is a signed checkpoint.
type Seal struct {
	Checkpoint
	Signature []byte
}

// sealTag opens the signed message, so a signature over anything else never passes for a seal.
const sealTag = "paymentledger/audit/seal/v1"

// message is the byte string the signature covers: sealTag and every field, each preceded by
// its length as an 8-byte big-endian integer (unambiguous whatever the fields hold).
func (c Checkpoint) message() []byte {
	fields := [][]byte{
		[]byte(sealTag),
		strconv.AppendInt(nil, c.Seq, 10),
		c.Prev,
		[]byte(c.Position.String()),
		running(c.Running),
		strconv.AppendInt(nil, c.Streams, 10),
		strconv.AppendInt(nil, c.Events, 10),
		c.Root,
		strconv.AppendInt(nil, c.Changed, 10),
		c.ChangedRoot,
		[]byte(c.SealedAt.UTC().Format(time.RFC3339Nano)),
		[]byte(c.KeyID),
	}
	var b []byte
	for _, f := range fields {
		b = binary.BigEndian.AppendUint64(b, uint64(len(f)))
		b = append(b, f...)
	}
	return b
}

func running(xids []uint64) []byte {
	b := make([]byte, 0, 8*len(xids))
	for _, x := range xids {
		b = binary.BigEndian.AppendUint64(b, x)
	}
	return b
}

// Covers reports whether the seal covers the event at p (see Checkpoint).
func (c Checkpoint) Covers(p eventstore.Position) bool {
	return eventstore.Coverage{Position: c.Position, Running: c.Running}.Covers(p)
}

// Digest identifies the checkpoint: sha256 of its signed message. The next seal's Prev.
func (c Checkpoint) Digest() []byte {
	sum := sha256.Sum256(c.message())
	return sum[:]
}

// KeyID names a public key: the first 8 bytes of its SHA-256, in hex.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// sign signs c with key, setting c.KeyID to the key's.
func sign(c Checkpoint, key ed25519.PrivateKey) Seal {
	c.KeyID = KeyID(key.Public().(ed25519.PublicKey))
	c.SealedAt = c.SealedAt.UTC().Truncate(time.Microsecond)
	return Seal{Checkpoint: c, Signature: ed25519.Sign(key, c.message())}
}

// Verify checks the seal's signature with pub.
func (s Seal) Verify(pub ed25519.PublicKey) error {
	if want := KeyID(pub); s.KeyID != want {
		return fmt.Errorf("seal %d is signed by key %s, not by the audit public key %s", s.Seq, s.KeyID, want)
	}
	if !ed25519.Verify(pub, s.message(), s.Signature) {
		return fmt.Errorf("seal %d: the signature does not verify: the seal was altered or forged", s.Seq)
	}
	return nil
}

// sealJSON is the stored and shipped form of a seal: one JSON object, one line of the seal file.
type sealJSON struct {
	Seq         int64    `json:"seq"`
	Prev        string   `json:"prev"`
	Position    string   `json:"position"`
	Running     []uint64 `json:"running"`
	Streams     int64    `json:"streams"`
	Events      int64    `json:"events"`
	Root        string   `json:"root"`
	Changed     int64    `json:"changed"`
	ChangedRoot string   `json:"changedRoot"`
	SealedAt    string   `json:"sealedAt"`
	KeyID       string   `json:"keyId"`
	Signature   string   `json:"signature"`
}

// MarshalJSON writes the seal as one line of the seal file (hashes in hex, the signature in
// base64, the time in RFC 3339 with nanoseconds, UTC).
func (s Seal) MarshalJSON() ([]byte, error) {
	running := s.Running
	if running == nil {
		running = []uint64{}
	}
	return json.Marshal(sealJSON{
		Seq: s.Seq, Prev: hex.EncodeToString(s.Prev), Position: s.Position.String(), Running: running,
		Streams: s.Streams, Events: s.Events, Root: hex.EncodeToString(s.Root),
		Changed: s.Changed, ChangedRoot: hex.EncodeToString(s.ChangedRoot),
		SealedAt: s.SealedAt.UTC().Format(time.RFC3339Nano), KeyID: s.KeyID,
		Signature: base64.StdEncoding.EncodeToString(s.Signature),
	})
}

// UnmarshalJSON reads what MarshalJSON writes, strictly: unknown fields and malformed values
// are errors.
func (s *Seal) UnmarshalJSON(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var j sealJSON
	if err := dec.Decode(&j); err != nil {
		return fmt.Errorf("seal: %w", err)
	}
	var out Seal
	var errs []error
	hexField := func(name, v string) []byte {
		b, err := hex.DecodeString(v)
		if err != nil || len(b) != sha256.Size {
			errs = append(errs, fmt.Errorf("%s: want %d bytes in hex", name, sha256.Size))
		}
		return b
	}
	out.Seq, out.Streams, out.Events, out.Changed, out.KeyID = j.Seq, j.Streams, j.Events, j.Changed, j.KeyID
	if len(j.Running) > 0 {
		out.Running = j.Running
	}
	if !slices.IsSorted(out.Running) {
		errs = append(errs, fmt.Errorf("running: not in ascending order"))
	}
	out.Prev = hexField("prev", j.Prev)
	out.Root = hexField("root", j.Root)
	out.ChangedRoot = hexField("changedRoot", j.ChangedRoot)
	var err error
	if out.Position, err = eventstore.ParsePosition(j.Position); err != nil {
		errs = append(errs, err)
	}
	if out.SealedAt, err = time.Parse(time.RFC3339Nano, j.SealedAt); err != nil {
		errs = append(errs, fmt.Errorf("sealedAt: %w", err))
	}
	if out.Signature, err = base64.StdEncoding.DecodeString(j.Signature); err != nil {
		errs = append(errs, fmt.Errorf("signature: %w", err))
	}
	if out.Seq < 1 {
		errs = append(errs, fmt.Errorf("seq %d < 1", out.Seq))
	}
	if len(errs) > 0 {
		return fmt.Errorf("seal: %w", errors.Join(errs...))
	}
	*s = out
	return nil
}

// GenerateKey makes an ed25519 key pair for seals. The private key is kept as its 32-byte seed
// (what AUDIT_SIGNING_KEY holds in base64).
func GenerateKey() (seed []byte, pub ed25519.PublicKey, err error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("audit: generate key: %w", err)
	}
	return priv.Seed(), pub, nil
}

// FileSeal is a seal read from a seal file, with its line number.
type FileSeal struct {
	Line int
	Seal Seal
	Err  error // the line does not parse; Seal is zero
}

// ReadSealFile reads a JSON-lines seal file. Blank lines are skipped; a line that does not parse
// is returned with its error, not skipped, so the audit can report it.
func ReadSealFile(path string) ([]FileSeal, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("audit: seal file: %w", err)
	}
	defer f.Close()
	return readSeals(f)
}

func readSeals(r io.Reader) ([]FileSeal, error) {
	var out []FileSeal
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		fs := FileSeal{Line: n}
		fs.Err = json.Unmarshal(line, &fs.Seal)
		out = append(out, fs)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("audit: seal file: %w", err)
	}
	return out, nil
}
