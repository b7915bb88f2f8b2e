package config_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/paymentledger/ledger/internal/config"
)

type auditSettings struct {
	config.Shared
	config.Audit
}

func (a auditSettings) Validate() error { return errors.Join(a.Shared.Validate(), a.Audit.Validate()) }

func TestAuditSettings(t *testing.T) {
	seed := bytes.Repeat([]byte{1}, ed25519.SeedSize)
	priv := ed25519.NewKeyFromSeed(seed)
	pub := priv.Public().(ed25519.PublicKey)
	b64 := base64.StdEncoding.EncodeToString

	for _, signing := range []string{b64(seed), b64(priv)} {
		var a auditSettings
		err := config.Load(ctx, envFrom(map[string]string{
			"AUDIT_SIGNING_KEY": signing, "AUDIT_PUBLIC_KEY": b64(pub), "AUDIT_CHAIN_KEY": b64(bytes.Repeat([]byte{2}, 48)),
		}), &a)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a.AuditSigningKey, priv) || !bytes.Equal(a.AuditPublicKey, pub) || len(a.AuditChainKey) != 48 {
			t.Fatalf("loaded %+v", a.Audit)
		}
		if got := a.SealFile("/data"); got != "/data/audit-seals.jsonl" {
			t.Fatalf("default seal file %q", got)
		}
		if red := config.Redact(a); red["AUDIT_SIGNING_KEY"] != "****" || red["AUDIT_CHAIN_KEY"] != "****" || red["AUDIT_PUBLIC_KEY"] != b64(pub) {
			t.Fatalf("redacted %v", red)
		}
	}

	other := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{3}, 32)).Public().(ed25519.PublicKey)
	badPair := append(bytes.Clone(seed), other...)
	secret := b64(bytes.Repeat([]byte{7}, 16))
	for _, c := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"AUDIT_SIGNING_KEY": secret}, "AUDIT_SIGNING_KEY: the value (not shown) decodes to 16 bytes"},
		{map[string]string{"AUDIT_SIGNING_KEY": "not base64!"}, "AUDIT_SIGNING_KEY: the value (not shown) is not standard base64"},
		{map[string]string{"AUDIT_SIGNING_KEY": b64(badPair)}, "second half is not the public key"},
		{map[string]string{"AUDIT_PUBLIC_KEY": b64(seed[:16])}, "AUDIT_PUBLIC_KEY: "},
		{map[string]string{"AUDIT_CHAIN_KEY": secret}, "AUDIT_CHAIN_KEY: the value (not shown) decodes to 16 bytes, fewer than 32"},
		{map[string]string{"AUDIT_SIGNING_KEY": b64(seed), "AUDIT_PUBLIC_KEY": b64(other)}, "AUDIT_PUBLIC_KEY: is not the public key of AUDIT_SIGNING_KEY"},
	} {
		var a auditSettings
		err := config.Load(ctx, envFrom(c.env), &a)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want %q", c.env, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), secret) {
			t.Errorf("%v: a secret in the error: %v", c.env, err)
		}
	}
	var a auditSettings
	if err := config.Load(ctx, envFrom(map[string]string{"AUDIT_SEAL_FILE": "/var/seals.jsonl"}), &a); err != nil || a.SealFile("/data") != "/var/seals.jsonl" {
		t.Fatalf("AUDIT_SEAL_FILE set: %q, %v", a.SealFile("/data"), err)
	}
}
