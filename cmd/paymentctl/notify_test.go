package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/paymentledger/ledger/internal/pgtest"
)

func TestNotificationURLCommands(t *testing.T) {
	vars := map[string]string{"DATABASE_URL": pgtest.NewDatabase(t), "SECRETS_KEY": base64.StdEncoding.EncodeToString(randomKey(t))}
	ctl := func(args ...string) (string, error) {
		t.Helper()
		var out, errOut bytes.Buffer
		err := run(ctx, args, envFrom(vars), strings.NewReader(""), &out, &errOut)
		return out.String(), err
	}
	must := func(args ...string) string {
		t.Helper()
		out, err := ctl(args...)
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		return out
	}
	must("merchants", "create", "--name", "Hook shop", "--id", "hook-shop")
	var set struct{ URL, SigningSecret, SecretHint string }
	if err := json.Unmarshal([]byte(must("merchants", "set-notification-url", "hook-shop", "https://shop.example/hooks", "--json")), &set); err != nil {
		t.Fatal(err)
	}
	if set.URL != "https://shop.example/hooks" || !strings.HasPrefix(set.SigningSecret, "whsec_") {
		t.Fatalf("set-notification-url --json: %+v", set)
	}
	if out := must("merchants", "set-notification-url", "hook-shop", "https://shop.example/v2"); strings.Contains(out, "shown once") || !strings.Contains(out, set.SecretHint) {
		t.Fatalf("a URL change shows no secret:\n%s", out)
	}
	if _, err := ctl("merchants", "set-notification-url", "hook-shop", "https://u:p@shop.example/"); err == nil || !strings.Contains(err.Error(), "user name") {
		t.Fatalf("a URL with a password: %v", err)
	}
	out := must("merchants", "rotate-notification-secret", "hook-shop", "--grace", "1h")
	if !strings.Contains(out, "shown once") || !strings.Contains(out, "previous secret also signs until") || strings.Contains(out, set.SigningSecret) {
		t.Fatalf("rotate-notification-secret:\n%s", out)
	}
	if out := must("merchants", "show", "hook-shop"); !strings.Contains(out, "notify:      https://shop.example/v2") {
		t.Fatalf("show lacks the notification URL:\n%s", out)
	}
	if out := must("merchants", "remove-notification-url", "hook-shop"); !strings.Contains(out, "removed") {
		t.Fatalf("remove-notification-url: %q", out)
	}
	if out := must("merchants", "show", "hook-shop"); strings.Contains(out, "notify:") {
		t.Fatalf("show after removal:\n%s", out)
	}
}
