package secrets

import (
	"bytes"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func key(t *testing.T) []byte {
	t.Helper()
	k, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSealOpenAndRotation(t *testing.T) {
	oldKey, newKey := key(t), key(t)
	old, err := NewKeyring(oldKey)
	if err != nil {
		t.Fatal(err)
	}
	aad := []byte("merchant-a/cred-1")
	s, err := old.Seal([]byte("test_sk_secret"), aad)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(s.Ciphertext, []byte("test_sk_secret")) {
		t.Fatal("the ciphertext holds the plaintext")
	}
	// After a rotation the new keyring seals under the new key and still opens the old value.
	rotated, err := NewKeyring(newKey, oldKey)
	if err != nil {
		t.Fatal(err)
	}
	got, err := rotated.Open(s, aad)
	if err != nil || string(got) != "test_sk_secret" {
		t.Fatalf("open under a previous key: %q %v", got, err)
	}
	resealed, err := rotated.Seal(got, aad)
	if err != nil || resealed.KeyID != KeyID(newKey) || resealed.KeyID == s.KeyID {
		t.Fatalf("reseal: %+v %v", resealed, err)
	}
	// Once the old key is gone, the old value does not open; the resealed one does.
	onlyNew, _ := NewKeyring(newKey)
	if _, err := onlyNew.Open(s, aad); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("old value without the old key: %v", err)
	}
	if _, err := onlyNew.Open(resealed, aad); err != nil {
		t.Fatal(err)
	}
	// Moved to another record (other additional data) or altered: refused.
	if _, err := rotated.Open(s, []byte("merchant-b/cred-1")); !errors.Is(err, ErrOpen) {
		t.Fatalf("moved value: %v", err)
	}
	s.Ciphertext[0] ^= 1
	if _, err := rotated.Open(s, aad); !errors.Is(err, ErrOpen) {
		t.Fatalf("altered value: %v", err)
	}
}

func TestParseKey(t *testing.T) {
	k := key(t)
	for _, enc := range []string{base64.StdEncoding.EncodeToString(k), base64.RawURLEncoding.EncodeToString(k), " " + base64.StdEncoding.EncodeToString(k) + "\n"} {
		got, err := ParseKey(enc)
		if err != nil || !bytes.Equal(got, k) {
			t.Fatalf("%q: %v", enc, err)
		}
	}
	for _, bad := range []string{"", "not base64!", base64.StdEncoding.EncodeToString(k[:16])} {
		if _, err := ParseKey(bad); err == nil {
			t.Fatalf("%q accepted", bad)
		}
	}
}

func TestLoadOrCreateKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "secrets-key")
	k1, created, err := LoadOrCreateKeyFile(path)
	if err != nil || !created || len(k1) != KeySize {
		t.Fatalf("create: %v %v", created, err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v %v", st.Mode(), err)
	}
	k2, created, err := LoadOrCreateKeyFile(path)
	if err != nil || created || !bytes.Equal(k1, k2) {
		t.Fatalf("load: %v %v", created, err)
	}
}
