package config

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"path/filepath"

	"github.com/paymentledger/ledger/eventstore"
)

// Audit is the environment of the audit (package audit): the seal keys, the seal file and the
// chain key. paymentd and paymentctl both embed it: the chain key must be the same for every
// process that appends events, and seals made by one are verified by the other.
type Audit struct {
	AuditSigningKey SigningKey `env:"AUDIT_SIGNING_KEY" secret:"true" desc:"ed25519 private key that signs seals, base64 of its 32-byte seed or 64-byte key (paymentctl audit keygen); empty: paymentd seals nothing. Keep it off the database machine"`
	AuditPublicKey  PublicKey  `env:"AUDIT_PUBLIC_KEY" desc:"ed25519 public key that verifies seals, base64 of 32 bytes (paymentctl audit keygen); the audit needs it, and nothing else, to check seals"`
	AuditSealFile   string     `env:"AUDIT_SEAL_FILE" desc:"JSON-lines file every seal is appended to, to be shipped off the machine (default $DATA_DIR/audit-seals.jsonl)"`
	AuditChainKey   ChainKey   `env:"AUDIT_CHAIN_KEY" secret:"true" desc:"key of the event hash chain, base64 of at least 32 random bytes (openssl rand -base64 32): events appended with it are hashed with HMAC-SHA256, so database access alone cannot recompute them. Every process that appends must have the same key, and it cannot be changed once set"`
}

// SealFile is AUDIT_SEAL_FILE, or audit-seals.jsonl in dataDir when it is empty.
func (a Audit) SealFile(dataDir string) string {
	if a.AuditSealFile != "" {
		return a.AuditSealFile
	}
	return filepath.Join(dataDir, "audit-seals.jsonl")
}

// Validate checks that the two seal keys belong together when both are set: seals signed with
// one key and checked with another would all fail the audit.
func (a Audit) Validate() error {
	if a.AuditSigningKey == nil || a.AuditPublicKey == nil {
		return nil
	}
	if pub := ed25519.PrivateKey(a.AuditSigningKey).Public().(ed25519.PublicKey); !pub.Equal(ed25519.PublicKey(a.AuditPublicKey)) {
		return Invalid("AUDIT_PUBLIC_KEY", "is not the public key of AUDIT_SIGNING_KEY (that one is %s)", base64.StdEncoding.EncodeToString(pub))
	}
	return nil
}

// SigningKey is an ed25519 private key, written as standard base64 of its 32-byte seed or of
// the 64-byte private key (seed followed by public key). Its decoder never repeats the value.
type SigningKey ed25519.PrivateKey

// EnvDecode implements envconfig.DecoderCtx.
func (k *SigningKey) EnvDecode(_ context.Context, v string) error {
	*k = nil
	if v == "" {
		return nil
	}
	b, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		return valueErrorf("the value (not shown) is not standard base64; make a key pair with paymentctl audit keygen")
	}
	switch len(b) {
	case ed25519.SeedSize:
		*k = SigningKey(ed25519.NewKeyFromSeed(b))
	case ed25519.PrivateKeySize:
		key := ed25519.NewKeyFromSeed(b[:ed25519.SeedSize])
		if !bytes.Equal(key[ed25519.SeedSize:], b[ed25519.SeedSize:]) {
			return valueErrorf("the value (not shown) is 64 bytes whose second half is not the public key of the first")
		}
		*k = SigningKey(key)
	default:
		return valueErrorf("the value (not shown) decodes to %d bytes, not %d (a seed) or %d (a private key); make a key pair with paymentctl audit keygen",
			len(b), ed25519.SeedSize, ed25519.PrivateKeySize)
	}
	return nil
}

// PublicKey is an ed25519 public key, written as standard base64 of its 32 bytes.
type PublicKey ed25519.PublicKey

// EnvDecode implements envconfig.DecoderCtx.
func (k *PublicKey) EnvDecode(_ context.Context, v string) error {
	*k = nil
	if v == "" {
		return nil
	}
	b, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		return valueErrorf("%q is not standard base64", v)
	}
	if len(b) != ed25519.PublicKeySize {
		return valueErrorf("%q decodes to %d bytes, not %d", v, len(b), ed25519.PublicKeySize)
	}
	*k = b
	return nil
}

// String is the key as written in the environment: public, so the start-up log shows it.
func (k PublicKey) String() string { return base64.StdEncoding.EncodeToString(k) }

// ChainKey is the key of the event hash chain: standard base64 of at least
// eventstore.MinChainKeyLen bytes. Its decoder never repeats the value.
type ChainKey []byte

// EnvDecode implements envconfig.DecoderCtx.
func (k *ChainKey) EnvDecode(_ context.Context, v string) error {
	*k = nil
	if v == "" {
		return nil
	}
	b, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		return valueErrorf("the value (not shown) is not standard base64; make one with openssl rand -base64 32")
	}
	if len(b) < eventstore.MinChainKeyLen {
		return valueErrorf("the value (not shown) decodes to %d bytes, fewer than %d; make one with openssl rand -base64 32", len(b), eventstore.MinChainKeyLen)
	}
	*k = b
	return nil
}

// Key is the key as the event store takes it: the zero key (plain SHA-256 chains) when
// AUDIT_CHAIN_KEY is unset.
func (k ChainKey) Key() (eventstore.ChainKey, error) {
	if len(k) == 0 {
		return eventstore.ChainKey{}, nil
	}
	key, err := eventstore.NewChainKey(k)
	if err != nil {
		return eventstore.ChainKey{}, fmt.Errorf("AUDIT_CHAIN_KEY: %w", err)
	}
	return key, nil
}
