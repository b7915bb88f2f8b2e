package merchants_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/merchants"
	"github.com/paymentledger/ledger/secrets"
)

func streamLen(t *testing.T, f *fixture, id domain.MerchantID) int {
	t.Helper()
	recs, err := f.store.ReadStream(ctx, domain.MerchantStreamName(id), 1)
	if err != nil {
		t.Fatal(err)
	}
	return len(recs)
}

func secretRows(t *testing.T, f *fixture) int {
	t.Helper()
	var n int
	if err := f.pool.QueryRow(ctx, `SELECT count(*) FROM merchant_secrets`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// A notification URL gets a signing secret once; the secret is sealed, shown once, never in an
// event; a URL change keeps it; a rotation makes a new one and keeps the old one for the grace;
// the dispatcher's list follows all of it.
func TestNotificationEndpointLifecycle(t *testing.T) {
	f := newFixture(t)
	if _, err := f.a.Create(ctx, merchants.CreateInput{ID: "shop-1", Name: "Shop"}); err != nil {
		t.Fatal(err)
	}
	set, err := f.a.SetNotificationURL(ctx, "shop-1", "https://shop.example/hooks", merchants.ActorAdmin)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(set.SigningSecret, "whsec_") || len(set.SigningSecret) != len("whsec_")+43 || set.URL != "https://shop.example/hooks" {
		t.Fatalf("set: %+v", set)
	}
	again, err := f.a.SetNotificationURL(ctx, "shop-1", "https://shop.example/v2/hooks", merchants.ActorAdmin)
	if err != nil || again.SigningSecret != "" || again.SecretHint != set.SecretHint {
		t.Fatalf("a URL change shows no secret and keeps the old one: %+v %v", again, err)
	}

	targets, err := f.b.NotificationTargets(ctx)
	if err != nil || len(targets) != 1 || targets[0].Endpoint.URL != "https://shop.example/v2/hooks" {
		t.Fatalf("targets: %+v %v", targets, err)
	}
	ep := targets[0].Endpoint
	plain, err := f.b.NotificationSecret(ctx, "shop-1", ep.SecretID)
	if err != nil || string(plain) != set.SigningSecret {
		t.Fatalf("the stored secret opens to what was shown: %v", err)
	}

	rotated, err := f.a.RotateNotificationSecret(ctx, "shop-1", time.Hour, merchants.ActorAdmin)
	if err != nil || rotated.SigningSecret == "" || rotated.SigningSecret == set.SigningSecret || rotated.PreviousSecretValidUntil == nil {
		t.Fatalf("rotate: %+v %v", rotated, err)
	}
	f.clock.Add(ttl)
	targets, err = f.b.NotificationTargets(ctx)
	if err != nil || len(targets) != 1 {
		t.Fatal(targets, err)
	}
	if ids := targets[0].Endpoint.SecretIDsAt(f.clock.Now()); len(ids) != 2 || ids[1] != ep.SecretID {
		t.Fatalf("during the grace both secrets sign: %v", ids)
	}

	recs, err := f.store.ReadStream(ctx, domain.MerchantStreamName("shop-1"), 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if strings.Contains(string(r.Data), set.SigningSecret[6:]) || strings.Contains(string(r.Data), rotated.SigningSecret[6:]) {
			t.Fatalf("event %s holds a signing secret: %s", r.Type, r.Data)
		}
	}
	// Re-sealing under a new key-encryption key covers signing secrets too.
	next, _ := secrets.GenerateKey()
	kr, _ := secrets.NewKeyring(next, f.kek)
	svc := merchants.New(f.store, f.pool, merchants.Config{Keyring: kr, Now: f.clock.Now})
	if res, err := svc.ResealSecrets(ctx, nil); err != nil || res.Resealed != 2 {
		t.Fatalf("reseal: %+v %v", res, err)
	}
	if plain, err := svc.NotificationSecret(ctx, "shop-1", ep.SecretID); err != nil || string(plain) != set.SigningSecret {
		t.Fatalf("after a reseal: %v", err)
	}

	if _, err := f.a.RemoveNotificationURL(ctx, "shop-1", merchants.ActorAdmin); err != nil {
		t.Fatal(err)
	}
	f.clock.Add(ttl)
	if targets, err := f.b.NotificationTargets(ctx); err != nil || len(targets) != 0 {
		t.Fatalf("after removal: %+v %v", targets, err)
	}
	if _, err := f.a.RotateNotificationSecret(ctx, "shop-1", time.Hour, merchants.ActorAdmin); !errors.Is(err, domain.ErrNoNotificationURL) {
		t.Fatalf("rotating without a URL: %v", err)
	}
}

// A bad URL is refused before anything is stored or recorded.
func TestNotificationURLValidation(t *testing.T) {
	f := newFixture(t)
	if _, err := f.a.Create(ctx, merchants.CreateInput{ID: "shop-1", Name: "Shop", TossSecretKey: "live_sk_0123456789abcdef"}); err != nil {
		t.Fatal(err)
	}
	events, rows := streamLen(t, f, "shop-1"), secretRows(t, f)
	for _, bad := range []string{"", "http://shop.example/hooks", "https://u:p@shop.example/", "https://shop.example/\x01",
		"https://shop.example/" + strings.Repeat("a", 2048), "https://%zz/", "mailto:ops@shop.example", "https://shop.example/\xff"} {
		if _, err := f.a.SetNotificationURL(ctx, "shop-1", bad, merchants.ActorAdmin); !errors.Is(err, domain.ErrNotificationURL) {
			t.Errorf("%q: %v", bad, err)
		}
	}
	if _, err := f.a.SetNotificationURL(ctx, "nobody", "https://shop.example/", merchants.ActorAdmin); !errors.Is(err, domain.ErrMerchantNotFound) {
		t.Errorf("unknown merchant: %v", err)
	}
	if streamLen(t, f, "shop-1") != events || secretRows(t, f) != rows {
		t.Fatal("a refused URL wrote something")
	}
	// A live merchant may still use plain http to its own machine.
	if _, err := f.a.SetNotificationURL(ctx, "shop-1", "http://127.0.0.1:9000/hooks", merchants.ActorAdmin); err != nil {
		t.Fatal(err)
	}
}
