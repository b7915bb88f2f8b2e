package merchants

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"strings"

	"github.com/paymentledger/ledger/domain"
)

// An API key is "sk_test_" or "sk_live_", a 16-character key id and a 52-character secret, all
// lower-case base32 (a-z, 2-7), so it survives copy and paste, shells and HTTP Basic:
//
//	sk_test_ab3dkq7xyz2mnpqr<52 characters of secret>
//
// The key id (80 random bits) finds the key; the secret (256 random bits from crypto/rand) is
// never stored, only its SHA-256, compared in constant time. A hash without a slow KDF is
// enough because the secret is random, not a password a person chose.
const (
	prefixTest   = "sk_test_"
	prefixLive   = "sk_live_"
	keyIDBytes   = 10 // 16 base32 characters
	secretBytes  = 32 // 52 base32 characters
	keyIDChars   = 16
	secretChars  = 52
	prefixChars  = 8
	apiKeyLength = prefixChars + keyIDChars + secretChars
)

var b32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// ErrMalformedKey: the text is not an API key of this system.
var ErrMalformedKey = errors.New("merchants: not an API key (sk_test_… or sk_live_…)")

// newAPIKey returns a new key in mode, its id and the hex SHA-256 of its secret.
func newAPIKey(mode domain.KeyMode) (key string, id domain.APIKeyID, secretHash string, err error) {
	raw := make([]byte, keyIDBytes+secretBytes)
	if _, err := rand.Read(raw); err != nil {
		return "", "", "", err
	}
	kid := b32.EncodeToString(raw[:keyIDBytes])
	secret := b32.EncodeToString(raw[keyIDBytes:])
	return prefixOf(mode) + kid + secret, domain.APIKeyID(kid), hashSecret(secret), nil
}

func prefixOf(mode domain.KeyMode) string {
	if mode == domain.ModeLive {
		return prefixLive
	}
	return prefixTest
}

// parseAPIKey splits a key into its mode, id and secret. It only checks the shape.
func parseAPIKey(s string) (domain.KeyMode, domain.APIKeyID, string, error) {
	if len(s) != apiKeyLength {
		return "", "", "", ErrMalformedKey
	}
	var mode domain.KeyMode
	switch {
	case strings.HasPrefix(s, prefixTest):
		mode = domain.ModeTest
	case strings.HasPrefix(s, prefixLive):
		mode = domain.ModeLive
	default:
		return "", "", "", ErrMalformedKey
	}
	rest := s[prefixChars:]
	for i := 0; i < len(rest); i++ {
		c := rest[i]
		if !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return "", "", "", ErrMalformedKey
		}
	}
	return mode, domain.APIKeyID(rest[:keyIDChars]), rest[keyIDChars:], nil
}

func hashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// secretMatches compares a presented secret with a stored hash in constant time.
func secretMatches(secret, storedHash string) bool {
	want, err := hex.DecodeString(storedHash)
	if err != nil {
		return false
	}
	got := sha256.Sum256([]byte(secret))
	return subtle.ConstantTimeCompare(got[:], want) == 1
}

// newID returns prefix and 16 random lower-case base32 characters (80 bits).
func newID(prefix string) (string, error) {
	raw := make([]byte, 10)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	return prefix + b32.EncodeToString(raw), nil
}
