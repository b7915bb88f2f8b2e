package toss

import (
	"errors"
	"strings"
)

// secretKeyPrefixes are the prefixes of Toss secret keys (toss-api.md §1): test_sk_ and
// live_sk_, widget keys test_gsk_ / live_gsk_, and the older test_ak_ / live_ak_. A client key
// (test_ck_…) is for browsers and never authenticates a server call.
var secretKeyPrefixes = []string{"test_sk_", "live_sk_", "test_gsk_", "live_gsk_", "test_ak_", "live_ak_"}

// maxSecretKeyLen bounds a secret key; Toss's are well under it.
const maxSecretKeyLen = 200

// ValidateSecretKey checks that k looks like a Toss secret key: a known prefix, printable ASCII
// without spaces, at most 200 characters. Its messages never quote the key.
func ValidateSecretKey(k string) error {
	if err := checkSecretKey(k); err != nil {
		return err
	}
	if len(k) > maxSecretKeyLen {
		return errors.New("is longer than 200 characters")
	}
	for _, p := range secretKeyPrefixes {
		if strings.HasPrefix(k, p) && len(k) > len(p) {
			return nil
		}
	}
	if strings.HasPrefix(k, "test_ck_") || strings.HasPrefix(k, "live_ck_") || strings.HasPrefix(k, "test_gck_") || strings.HasPrefix(k, "live_gck_") {
		return errors.New("is a client key (for the browser); the server needs the secret key (test_sk_… or live_sk_…)")
	}
	return errors.New("does not start with test_sk_, live_sk_, test_gsk_ or live_gsk_")
}

// SecretKeyHint shows enough of a secret key to tell keys apart and nothing that helps guess it:
// its prefix and its last four characters.
func SecretKeyHint(k string) string {
	prefix := ""
	for _, p := range secretKeyPrefixes {
		if strings.HasPrefix(k, p) {
			prefix = p
			break
		}
	}
	if len(k) < len(prefix)+12 {
		return prefix + "…"
	}
	return prefix + "…" + k[len(k)-4:]
}
