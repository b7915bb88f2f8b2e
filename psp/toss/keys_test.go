package toss

import (
	"strings"
	"testing"
)

func TestValidateSecretKey(t *testing.T) {
	for _, ok := range []string{"test_sk_zXLkKEypNArWmo50nX3lmeaxYG5R", "live_sk_abc", "test_gsk_docs_OaPz8L5KdmQXkzRz3y47BMw6"} {
		if err := ValidateSecretKey(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "test_sk_", "sk_test_x", "test_ck_abc", " test_sk_abc", "test_sk_a b", "test_sk_\x00", "test_sk_" + strings.Repeat("a", 200)} {
		err := ValidateSecretKey(bad)
		if err == nil {
			t.Errorf("%q accepted", bad)
			continue
		}
		if len(bad) > 10 && strings.Contains(err.Error(), bad) {
			t.Errorf("the message quotes the key: %v", err)
		}
	}
}

func TestSecretKeyHint(t *testing.T) {
	if got := SecretKeyHint("test_sk_zXLkKEypNArWmo50nX3lmeaxYG5R"); got != "test_sk_…YG5R" {
		t.Fatalf("hint %q", got)
	}
	if got := SecretKeyHint("live_sk_short"); got != "live_sk_…" {
		t.Fatalf("a short key shows no characters: %q", got)
	}
}
