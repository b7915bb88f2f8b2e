// Package secrets encrypts secrets at rest: each merchant's Toss secret key is stored sealed
// with AES-256-GCM under a key-encryption key (KEK) that lives outside the database
// (SECRETS_KEY, 32 random bytes in base64). A database dump alone reveals no Toss key.
//
// Rotation: every sealed value records the id of the KEK that sealed it. A Keyring holds the
// current KEK, which seals, and any previous ones (SECRETS_KEY_PREVIOUS), which still open
// what they sealed; re-sealing every value under the current KEK (paymentctl secrets rotate)
// retires a previous one. Each value is bound to where it is stored by additional data (the
// merchant and credential id), so a sealed value copied to another merchant's row does not open.
package secrets

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// KeySize is the size of a key-encryption key: AES-256.
const KeySize = 32

// ErrUnknownKey means a value was sealed under a KEK the keyring does not hold.
var ErrUnknownKey = errors.New("secrets: sealed under a key-encryption key this keyring does not hold (is SECRETS_KEY_PREVIOUS missing it?)")

// ErrOpen means a sealed value does not open: it was altered, or moved to another record.
var ErrOpen = errors.New("secrets: sealed value does not open (altered, or not stored where it was sealed)")

// Sealed is a value encrypted under one KEK.
type Sealed struct {
	KeyID      string // the KEK's id (KeyID)
	Nonce      []byte
	Ciphertext []byte // with the GCM tag
}

type kek struct {
	id   string
	aead cipher.AEAD
}

// Keyring seals under its current KEK and opens under any of its KEKs. It is safe for
// concurrent use.
type Keyring struct {
	current kek
	byID    map[string]kek
}

// KeyID names a KEK without revealing it: the first 8 bytes of a SHA-256 over a fixed label and
// the key, in hex.
func KeyID(key []byte) string {
	sum := sha256.Sum256(append([]byte("paymentledger secrets kek id\x00"), key...))
	return hex.EncodeToString(sum[:8])
}

func newKEK(key []byte) (kek, error) {
	if len(key) != KeySize {
		return kek{}, fmt.Errorf("secrets: a key-encryption key is %d bytes, got %d", KeySize, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return kek{}, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return kek{}, err
	}
	return kek{id: KeyID(key), aead: aead}, nil
}

// NewKeyring returns a keyring that seals under current and opens under current and previous.
func NewKeyring(current []byte, previous ...[]byte) (*Keyring, error) {
	cur, err := newKEK(current)
	if err != nil {
		return nil, err
	}
	k := &Keyring{current: cur, byID: map[string]kek{cur.id: cur}}
	for i, p := range previous {
		old, err := newKEK(p)
		if err != nil {
			return nil, fmt.Errorf("previous key %d: %w", i+1, err)
		}
		k.byID[old.id] = old
	}
	return k, nil
}

// CurrentKeyID is the id of the KEK that seals.
func (k *Keyring) CurrentKeyID() string { return k.current.id }

// Seal encrypts plaintext under the current KEK with a random nonce, bound to aad.
func (k *Keyring) Seal(plaintext, aad []byte) (Sealed, error) {
	nonce := make([]byte, k.current.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return Sealed{}, fmt.Errorf("secrets: nonce: %w", err)
	}
	return Sealed{KeyID: k.current.id, Nonce: nonce, Ciphertext: k.current.aead.Seal(nil, nonce, plaintext, aad)}, nil
}

// Open decrypts s, which must have been sealed with the same aad.
func (k *Keyring) Open(s Sealed, aad []byte) ([]byte, error) {
	key, ok := k.byID[s.KeyID]
	if !ok {
		return nil, fmt.Errorf("%w: key id %s", ErrUnknownKey, s.KeyID)
	}
	if len(s.Nonce) != key.aead.NonceSize() {
		return nil, ErrOpen
	}
	out, err := key.aead.Open(nil, s.Nonce, s.Ciphertext, aad)
	if err != nil {
		return nil, ErrOpen
	}
	return out, nil
}

// ParseKey decodes a KEK from standard or URL-safe base64 (padding optional); it must be
// exactly KeySize bytes.
func ParseKey(b64 string) ([]byte, error) {
	s := strings.TrimSpace(b64)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			if len(b) != KeySize {
				return nil, fmt.Errorf("decodes to %d bytes; a key is %d random bytes in base64 (e.g. openssl rand -base64 32)", len(b), KeySize)
			}
			return b, nil
		}
	}
	return nil, errors.New("is not base64; a key is 32 random bytes in base64 (e.g. openssl rand -base64 32)")
}

// GenerateKey returns a new random KEK.
func GenerateKey() ([]byte, error) {
	k := make([]byte, KeySize)
	if _, err := rand.Read(k); err != nil {
		return nil, fmt.Errorf("secrets: generate key: %w", err)
	}
	return k, nil
}

// LoadOrCreateKeyFile reads a KEK in base64 from path, or, when the file does not exist, writes
// a new random one there (mode 0600, directory 0700) and reports created. It is meant for the
// simulator mode on a developer's machine, where no SECRETS_KEY is configured.
func LoadOrCreateKeyFile(path string) (key []byte, created bool, err error) {
	b, err := os.ReadFile(path)
	if err == nil {
		k, err := ParseKey(string(b))
		if err != nil {
			return nil, false, fmt.Errorf("secrets: %s %w", path, err)
		}
		return k, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, fmt.Errorf("secrets: %w", err)
	}
	k, err := GenerateKey()
	if err != nil {
		return nil, false, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, false, fmt.Errorf("secrets: %w", err)
	}
	// O_EXCL: two processes starting at once must not each write their own key.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return LoadOrCreateKeyFile(path)
	}
	if err != nil {
		return nil, false, fmt.Errorf("secrets: %w", err)
	}
	if _, err := f.WriteString(base64.StdEncoding.EncodeToString(k) + "\n"); err != nil {
		f.Close()
		return nil, false, fmt.Errorf("secrets: write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, false, fmt.Errorf("secrets: sync %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return nil, false, fmt.Errorf("secrets: close %s: %w", path, err)
	}
	return k, true, nil
}
