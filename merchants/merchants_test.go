package merchants_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"

	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/eventstore"
	"github.com/paymentledger/ledger/internal/pgtest"
	"github.com/paymentledger/ledger/merchants"
	"github.com/paymentledger/ledger/secrets"
)

var ctx = context.Background()

// clock is a test clock that moves only when told.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type fixture struct {
	pool    *pgxpool.Pool
	store   *eventstore.Postgres
	keyring *secrets.Keyring
	kek     []byte // the keyring's key-encryption key
	clock   *clock
	// a and b are two services on one database: two paymentd instances.
	a, b *merchants.Service
}

const ttl = 500 * time.Millisecond

func newFixture(t *testing.T) *fixture {
	t.Helper()
	pool := pgtest.NewPool(t)
	key, err := secrets.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	kr, err := secrets.NewKeyring(key)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{pool: pool, store: eventstore.NewPostgres(pool), keyring: kr, kek: key, clock: &clock{t: time.Date(2026, 12, 1, 12, 0, 0, 0, domain.KST)}}
	cfg := merchants.Config{Keyring: kr, CacheTTL: ttl, Now: f.clock.Now}
	f.a = merchants.New(f.store, pool, cfg)
	f.b = merchants.New(f.store, pool, cfg)
	return f
}

func wantReason(t *testing.T, err error, reason string) {
	t.Helper()
	var ae *merchants.AuthError
	if !errors.As(err, &ae) || ae.Reason != reason {
		t.Fatalf("error %v, want an auth failure %q", err, reason)
	}
}

func TestCreateIssuesAKeyWithEveryScope(t *testing.T) {
	f := newFixture(t)
	k, err := f.a.Create(ctx, merchants.CreateInput{ID: "shop-1", Name: "Shop", TossSecretKey: "live_sk_0123456789abcdef", Actor: merchants.ActorAdmin})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(k.APIKey, "sk_live_") || len(k.APIKey) != 76 || len(k.Scopes) != len(domain.AllScopes) {
		t.Fatalf("issued %+v", k)
	}
	p, err := f.b.Authenticate(ctx, k.APIKey)
	if err != nil || p.Merchant != "shop-1" || p.KeyID != k.KeyID || p.Mode != domain.ModeLive {
		t.Fatalf("authenticate on another instance: %+v %v", p, err)
	}
	if _, err := f.a.Create(ctx, merchants.CreateInput{ID: "shop-1", Name: "Again"}); !errors.Is(err, domain.ErrMerchantExists) {
		t.Fatalf("the same id again: %v", err)
	}
	// The secret is stored only as a hash: no event and no row holds the key.
	recs, err := f.store.ReadStream(ctx, domain.MerchantStreamName("shop-1"), 1)
	if err != nil {
		t.Fatal(err)
	}
	secret := k.APIKey[len("sk_live_")+16:]
	for _, r := range recs {
		if strings.Contains(string(r.Data), secret) || strings.Contains(string(r.Data), "live_sk_0123456789abcdef") {
			t.Fatalf("event %s holds a secret: %s", r.Type, r.Data)
		}
	}
}

func TestAuthenticationRefusesWhatItShould(t *testing.T) {
	f := newFixture(t)
	k, err := f.a.Create(ctx, merchants.CreateInput{ID: "shop-1", Name: "Shop"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.a.Authenticate(ctx, "sk_test_short")
	wantReason(t, err, merchants.ReasonMalformed)
	_, err = f.a.Authenticate(ctx, strings.ToUpper(k.APIKey))
	wantReason(t, err, merchants.ReasonMalformed)
	// Same id, another secret (the last character changed).
	last := k.APIKey[len(k.APIKey)-1]
	other := k.APIKey[:len(k.APIKey)-1] + map[bool]string{true: "b", false: "a"}[last == 'a']
	_, err = f.a.Authenticate(ctx, other)
	wantReason(t, err, merchants.ReasonBadSecret)
	// The right secret with the other mode's prefix.
	_, err = f.a.Authenticate(ctx, "sk_live_"+k.APIKey[len("sk_test_"):])
	wantReason(t, err, merchants.ReasonBadSecret)
	// A well-formed key nobody issued.
	_, err = f.a.Authenticate(ctx, "sk_test_"+strings.Repeat("a", 16)+strings.Repeat("b", 52))
	wantReason(t, err, merchants.ReasonUnknownKey)
}

// Revocation on one instance is refused by another instance within the cache TTL, by the clock,
// whatever the projections do: the state is re-checked against the merchant's stream.
func TestRevocationReachesEveryInstanceWithinTheCacheTTL(t *testing.T) {
	f := newFixture(t)
	k, err := f.a.Create(ctx, merchants.CreateInput{ID: "shop-1", Name: "Shop"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.b.Authenticate(ctx, k.APIKey); err != nil {
		t.Fatal(err) // b caches the merchant now
	}
	if _, err := f.a.RevokeKey(ctx, "shop-1", k.KeyID, merchants.ActorAdmin); err != nil {
		t.Fatal(err)
	}
	_, err = f.a.Authenticate(ctx, k.APIKey)
	wantReason(t, err, merchants.ReasonRevoked) // the instance that revoked knows at once
	f.clock.Add(ttl)
	_, err = f.b.Authenticate(ctx, k.APIKey)
	wantReason(t, err, merchants.ReasonRevoked)
}

func TestRotationKeepsTheOldKeyForTheGracePeriod(t *testing.T) {
	f := newFixture(t)
	old, err := f.a.Create(ctx, merchants.CreateInput{ID: "shop-1", Name: "Shop"})
	if err != nil {
		t.Fatal(err)
	}
	next, err := f.a.RotateKey(ctx, "shop-1", old.KeyID, time.Hour, merchants.ActorAdmin)
	if err != nil {
		t.Fatal(err)
	}
	if next.Replaces != old.KeyID || next.ReplacedUntil == nil || !next.ReplacedUntil.Equal(f.clock.Now().Add(time.Hour)) ||
		len(next.Scopes) != len(old.Scopes) {
		t.Fatalf("rotated %+v", next)
	}
	for _, key := range []string{old.APIKey, next.APIKey} {
		if _, err := f.b.Authenticate(ctx, key); err != nil {
			t.Fatalf("during the grace period: %v", err)
		}
	}
	f.clock.Add(time.Hour)
	_, err = f.b.Authenticate(ctx, old.APIKey)
	wantReason(t, err, merchants.ReasonRevoked)
	if _, err := f.b.Authenticate(ctx, next.APIKey); err != nil {
		t.Fatalf("the new key after the grace period: %v", err)
	}
	d, err := f.a.Show(ctx, "shop-1")
	if err != nil || len(d.Keys) != 2 || d.Keys[0].Status != "revoked" || d.Keys[1].Status != "active" {
		t.Fatalf("keys %+v %v", d.Keys, err)
	}
}

func TestIssuedKeyCarriesOnlyItsScopes(t *testing.T) {
	f := newFixture(t)
	if _, err := f.a.Create(ctx, merchants.CreateInput{ID: "shop-1", Name: "Shop"}); err != nil {
		t.Fatal(err)
	}
	k, err := f.a.IssueKey(ctx, "shop-1", []domain.Scope{domain.ScopePaymentsRead}, merchants.ActorAdmin)
	if err != nil {
		t.Fatal(err)
	}
	p, err := f.b.Authenticate(ctx, k.APIKey)
	if err != nil || len(p.Scopes) != 1 || p.Scopes[0] != domain.ScopePaymentsRead {
		t.Fatalf("%+v %v", p, err)
	}
	if _, err := f.a.IssueKey(ctx, "no-such", nil, merchants.ActorAdmin); !errors.Is(err, domain.ErrMerchantNotFound) {
		t.Fatalf("a key for an unknown merchant: %v", err)
	}
}

// The Toss key is sealed at rest, opened only for the merchant's own client, and a new key
// reaches every instance's clients within the cache TTL.
func TestTossKeysAreSealedAndPerMerchant(t *testing.T) {
	f := newFixture(t)
	if _, err := f.a.Create(ctx, merchants.CreateInput{ID: "shop-1", Name: "Shop", TossSecretKey: "test_sk_shop1_first"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.a.Create(ctx, merchants.CreateInput{ID: "shop-2", Name: "No key yet"}); err != nil {
		t.Fatal(err)
	}
	dir := f.b.NewDirectory("https://api.tosspayments.com")
	c1, err := dir.Client(ctx, "shop-1")
	if err != nil || c1 == nil {
		t.Fatalf("client of shop-1: %v", err)
	}
	if _, err := dir.Client(ctx, "shop-2"); !errors.Is(err, domain.ErrMerchantNotConfigured) {
		t.Fatalf("a merchant without a key: %v", err)
	}
	if _, err := dir.Client(ctx, "nobody"); !errors.Is(err, domain.ErrMerchantNotFound) {
		t.Fatalf("no such merchant: %v", err)
	}
	if _, err := f.a.SetTossKey(ctx, "shop-1", "test_ck_browserkey", merchants.ActorAdmin); !errors.Is(err, domain.ErrInvalidInput) {
		t.Fatalf("a client key must be refused: %v", err)
	}
	d, err := f.a.SetTossKey(ctx, "shop-1", "test_sk_shop1_second", merchants.ActorAdmin)
	if err != nil || d.TossKey != "test_sk_…cond" {
		t.Fatalf("set: %+v %v", d, err)
	}
	f.clock.Add(ttl)
	c2, err := dir.Client(ctx, "shop-1")
	if err != nil || c2 == c1 {
		t.Fatalf("after a new key the directory must build a new client: %v", err)
	}
	// Without the key-encryption key nothing opens.
	other, _ := secrets.GenerateKey()
	kr, _ := secrets.NewKeyring(other)
	blind := merchants.New(f.store, f.pool, merchants.Config{Keyring: kr, Now: f.clock.Now})
	if _, err := blind.NewDirectory("https://api.tosspayments.com").Client(ctx, "shop-1"); !errors.Is(err, secrets.ErrUnknownKey) {
		t.Fatalf("another key-encryption key opened a Toss key: %v", err)
	}
	if _, err := f.a.SetCommission(ctx, "shop-1", decimal.RequireFromString("0.05"), merchants.ActorAdmin); err != nil {
		t.Fatal(err)
	}
}

// The contract fee rate is a merchant setting in the merchant's stream: set, shown, kept in
// order (each rate from the moment it was set), and the same rate again records nothing.
func TestTossFeeRate(t *testing.T) {
	f := newFixture(t)
	if _, err := f.a.Create(ctx, merchants.CreateInput{ID: "shop-1", Name: "Shop", Actor: merchants.ActorAdmin}); err != nil {
		t.Fatal(err)
	}
	d, err := f.a.Show(ctx, "shop-1")
	if err != nil || d.TossFeeRate != nil {
		t.Fatalf("a new merchant has no fee rate: %+v %v", d.TossFeeRate, err)
	}
	first := f.clock.Now()
	if d, err = f.a.SetTossFeeRate(ctx, "shop-1", decimal.RequireFromString("0.03"), time.Time{}, merchants.ActorOperator); err != nil || d.TossFeeRate == nil || d.TossFeeRate.String() != "0.03" {
		t.Fatalf("set: %+v %v", d.TossFeeRate, err)
	}
	f.clock.Add(time.Hour)
	next := f.clock.Now().Add(24 * time.Hour)
	if d, err = f.a.SetTossFeeRate(ctx, "shop-1", decimal.RequireFromString("0.0341"), next, merchants.ActorOperator); err != nil || d.TossFeeRate.String() != "0.03" {
		t.Fatalf("a rate from tomorrow is not today's: %+v %v", d.TossFeeRate, err)
	}
	recs, err := f.store.ReadStream(ctx, domain.MerchantStreamName("shop-1"), 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err = f.a.SetTossFeeRate(ctx, "shop-1", decimal.RequireFromString("0.034100"), next, merchants.ActorOperator); err != nil {
		t.Fatal(err)
	}
	again, err := f.store.ReadStream(ctx, domain.MerchantStreamName("shop-1"), 1)
	if err != nil || len(again) != len(recs) {
		t.Fatalf("the same rate again appended: %d → %d events (%v)", len(recs), len(again), err)
	}
	if last := recs[len(recs)-1]; last.Type != string(domain.EventTossFeeRateSet) || last.Metadata.Actor != merchants.ActorOperator {
		t.Fatalf("last event %s by %s", last.Type, last.Metadata.Actor)
	}
	rates, err := f.b.TossFeeRates(ctx, "shop-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(rates) != 2 || !rates[0].From.Equal(first) || rates[0].Rate.String() != "0.03" || rates[1].Rate.String() != "0.0341" || !rates[1].From.Equal(next) {
		t.Fatalf("rates %+v", rates)
	}
	for _, bad := range []string{"1", "-0.1", "0.0000001"} {
		if _, err := f.a.SetTossFeeRate(ctx, "shop-1", decimal.RequireFromString(bad), time.Time{}, merchants.ActorOperator); domain.KindOf(err) != domain.KindInvalid {
			t.Errorf("rate %s: %v, want invalid input", bad, err)
		}
	}
	if _, err := f.a.SetTossFeeRate(ctx, "nope", decimal.RequireFromString("0.03"), time.Time{}, merchants.ActorOperator); !errors.Is(err, domain.ErrMerchantNotFound) {
		t.Fatalf("unknown merchant: %v", err)
	}
}

// CheckKey answers for a key by its id as Authenticate does for the key: it works, and after a
// revocation on another instance it is refused within the cache TTL; ids of no key, or of
// another merchant's key, are unknown.
func TestCheckKeyFollowsRevocation(t *testing.T) {
	f := newFixture(t)
	k, err := f.a.Create(ctx, merchants.CreateInput{ID: "shop-1", Name: "Shop"})
	if err != nil {
		t.Fatal(err)
	}
	other, err := f.a.Create(ctx, merchants.CreateInput{ID: "shop-2", Name: "Other"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := f.b.CheckKey(ctx, "shop-1", k.KeyID)
	if err != nil || p.Merchant != "shop-1" || p.KeyID != k.KeyID || len(p.Scopes) != len(domain.AllScopes) {
		t.Fatalf("CheckKey: %+v %v", p, err)
	}
	_, err = f.b.CheckKey(ctx, "shop-1", other.KeyID)
	wantReason(t, err, merchants.ReasonUnknownKey)
	_, err = f.b.CheckKey(ctx, "shop-none", k.KeyID)
	wantReason(t, err, merchants.ReasonUnknownKey)
	if _, err := f.a.RevokeKey(ctx, "shop-1", k.KeyID, merchants.ActorAdmin); err != nil {
		t.Fatal(err)
	}
	f.clock.Add(ttl)
	_, err = f.b.CheckKey(ctx, "shop-1", k.KeyID)
	wantReason(t, err, merchants.ReasonRevoked)
}
