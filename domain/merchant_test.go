package domain_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/paymentledger/ledger/domain"
)

const mid domain.MerchantID = "shop-1"

func mh(at time.Time) domain.MerchantHeader { return domain.MerchantHeader{MerchantID: mid, At: at} }

var (
	registered = domain.MerchantRegistered{MerchantHeader: mh(t0.Add(-time.Hour)), Name: "Shop"}
	keyIssued  = domain.APIKeyIssued{MerchantHeader: mh(t0.Add(-time.Hour)), KeyID: "k1", Mode: domain.ModeTest,
		SecretHash: strings.Repeat("a", 64), Scopes: []domain.Scope{domain.ScopePaymentsRead, domain.ScopeRefundsWrite}}
	hash2 = strings.Repeat("b", 64)

	hookURL     = "https://shop.example/hooks"
	endpointSet = domain.NotificationEndpointSet{MerchantHeader: mh(t0), URL: hookURL, SecretID: "nsec_1", SecretHint: "whsec_…abcd"}
)

func merchantOf(t *testing.T, events ...domain.Event) domain.Merchant {
	t.Helper()
	m, err := domain.RebuildMerchant(events)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestMerchantDeciders(t *testing.T) {
	grace := 24 * time.Hour
	revokedNow := domain.APIKeyRevoked{MerchantHeader: mh(t0), KeyID: "k1", EffectiveAt: t0, Reason: domain.RevokedByRequest}
	rotating := domain.APIKeyRevoked{MerchantHeader: mh(t0.Add(-time.Minute)), KeyID: "k1", EffectiveAt: t0.Add(time.Hour), Reason: domain.RevokedRotated}
	for _, tc := range []struct {
		name    string
		given   []domain.Event
		when    func(m domain.Merchant) ([]domain.Event, error)
		want    []domain.Event
		wantErr *domain.Error
	}{
		{
			name: "register", when: func(domain.Merchant) ([]domain.Event, error) {
				return domain.RegisterMerchant(mid, "Shop", t0.Add(-time.Hour))
			},
			want: []domain.Event{registered},
		},
		{
			name: "register with a bad id and an empty name reports both", when: func(domain.Merchant) ([]domain.Event, error) { return domain.RegisterMerchant("a b", "", t0) },
			wantErr: domain.ErrInvalidInput,
		},
		{
			name: "toss credentials on an unknown merchant", when: func(m domain.Merchant) ([]domain.Event, error) {
				return m.DecideTossCredentials("c1", "test_sk_…abcd", domain.ModeTest, t0)
			},
			wantErr: domain.ErrMerchantNotFound,
		},
		{
			name: "toss credentials", given: []domain.Event{registered}, when: func(m domain.Merchant) ([]domain.Event, error) {
				return m.DecideTossCredentials("c1", "live_sk_…abcd", domain.ModeLive, t0)
			},
			want: []domain.Event{domain.TossCredentialsSet{MerchantHeader: mh(t0), CredentialID: "c1", KeyHint: "live_sk_…abcd", Mode: domain.ModeLive}},
		},
		{
			name: "commission rate", given: []domain.Event{registered}, when: func(m domain.Merchant) ([]domain.Event, error) {
				return m.DecideCommissionRate(won("0.1"), t0)
			},
			want: []domain.Event{domain.CommissionRateChanged{MerchantHeader: mh(t0), Rate: won("0.1")}},
		},
		{
			name:  "the same commission rate again records nothing",
			given: []domain.Event{registered, domain.CommissionRateChanged{MerchantHeader: mh(t0), Rate: won("0.1")}},
			when:  func(m domain.Merchant) ([]domain.Event, error) { return m.DecideCommissionRate(won("0.10"), t0) },
		},
		{
			name: "a commission rate of 1 is refused", given: []domain.Event{registered},
			when:    func(m domain.Merchant) ([]domain.Event, error) { return m.DecideCommissionRate(won("1"), t0) },
			wantErr: domain.ErrInvalidInput,
		},
		{
			name: "Toss fee rate", given: []domain.Event{registered}, when: func(m domain.Merchant) ([]domain.Event, error) {
				return m.DecideTossFeeRate(won("0.0341"), time.Time{}, t0)
			},
			want: []domain.Event{domain.TossFeeRateSet{MerchantHeader: mh(t0), Rate: won("0.0341"), EffectiveFrom: t0}},
		},
		{
			name:  "the same Toss fee rate again records nothing",
			given: []domain.Event{registered, domain.TossFeeRateSet{MerchantHeader: mh(t0), Rate: won("0.0341"), EffectiveFrom: t0}},
			when: func(m domain.Merchant) ([]domain.Event, error) {
				return m.DecideTossFeeRate(won("0.034100"), time.Time{}, t0.Add(time.Hour))
			},
		},
		{
			name:  "a rate corrected from an earlier moment",
			given: []domain.Event{registered, domain.TossFeeRateSet{MerchantHeader: mh(t0), Rate: won("0.025"), EffectiveFrom: t0}},
			when: func(m domain.Merchant) ([]domain.Event, error) {
				return m.DecideTossFeeRate(won("0.03"), t0, t0.Add(time.Hour))
			},
			want: []domain.Event{domain.TossFeeRateSet{MerchantHeader: mh(t0.Add(time.Hour)), Rate: won("0.03"), EffectiveFrom: t0}},
		},
		{
			name: "a Toss fee rate of 0 is a rate (a promotion), not its absence", given: []domain.Event{registered},
			when: func(m domain.Merchant) ([]domain.Event, error) { return m.DecideTossFeeRate(won("0"), time.Time{}, t0) },
			want: []domain.Event{domain.TossFeeRateSet{MerchantHeader: mh(t0), Rate: won("0"), EffectiveFrom: t0}},
		},
		{
			name: "a Toss fee rate of 1 is refused", given: []domain.Event{registered},
			when:    func(m domain.Merchant) ([]domain.Event, error) { return m.DecideTossFeeRate(won("1"), time.Time{}, t0) },
			wantErr: domain.ErrInvalidInput,
		},
		{
			name: "a negative Toss fee rate is refused", given: []domain.Event{registered},
			when: func(m domain.Merchant) ([]domain.Event, error) {
				return m.DecideTossFeeRate(won("-0.01"), time.Time{}, t0)
			},
			wantErr: domain.ErrInvalidInput,
		},
		{
			name: "a Toss fee rate with more than 6 decimal places is refused", given: []domain.Event{registered},
			when: func(m domain.Merchant) ([]domain.Event, error) {
				return m.DecideTossFeeRate(won("0.0341001"), time.Time{}, t0)
			},
			wantErr: domain.ErrInvalidInput,
		},
		{
			name: "a Toss fee rate of an unknown merchant", when: func(m domain.Merchant) ([]domain.Event, error) {
				return m.DecideTossFeeRate(won("0.03"), time.Time{}, t0)
			},
			wantErr: domain.ErrMerchantNotFound,
		},
		{
			name: "issue a key", given: []domain.Event{registered}, when: func(m domain.Merchant) ([]domain.Event, error) {
				return m.DecideIssueKey(domain.IssueKeyCommand{KeyID: "k1", SecretHash: keyIssued.SecretHash, Scopes: keyIssued.Scopes}, t0.Add(-time.Hour))
			},
			want: []domain.Event{keyIssued},
		},
		{
			name: "a key with an unknown scope is refused", given: []domain.Event{registered}, when: func(m domain.Merchant) ([]domain.Event, error) {
				return m.DecideIssueKey(domain.IssueKeyCommand{KeyID: "k1", SecretHash: hash2, Scopes: []domain.Scope{"payments:delete"}}, t0)
			},
			wantErr: domain.ErrInvalidInput,
		},
		{
			name: "a taken key id is refused", given: []domain.Event{registered, keyIssued}, when: func(m domain.Merchant) ([]domain.Event, error) {
				return m.DecideIssueKey(domain.IssueKeyCommand{KeyID: "k1", SecretHash: hash2, Scopes: domain.AllScopes}, t0)
			},
			wantErr: domain.ErrInvalidInput,
		},
		{
			name: "revoke", given: []domain.Event{registered, keyIssued},
			when: func(m domain.Merchant) ([]domain.Event, error) { return m.DecideRevokeKey("k1", t0) },
			want: []domain.Event{revokedNow},
		},
		{
			name: "revoking a revoked key records nothing", given: []domain.Event{registered, keyIssued, revokedNow},
			when: func(m domain.Merchant) ([]domain.Event, error) { return m.DecideRevokeKey("k1", t0.Add(time.Second)) },
		},
		{
			name: "revoking a key in its rotation grace stops it now", given: []domain.Event{registered, keyIssued, rotating},
			when: func(m domain.Merchant) ([]domain.Event, error) { return m.DecideRevokeKey("k1", t0) },
			want: []domain.Event{revokedNow},
		},
		{
			name: "revoke an unknown key", given: []domain.Event{registered},
			when:    func(m domain.Merchant) ([]domain.Event, error) { return m.DecideRevokeKey("nope", t0) },
			wantErr: domain.ErrAPIKeyNotFound,
		},
		{
			name: "rotate: a new key with the old scopes, the old one works for the grace period", given: []domain.Event{registered, keyIssued},
			when: func(m domain.Merchant) ([]domain.Event, error) {
				return m.DecideRotateKey("k1", domain.IssueKeyCommand{KeyID: "k2", SecretHash: hash2}, grace, t0)
			},
			want: []domain.Event{
				domain.APIKeyIssued{MerchantHeader: mh(t0), KeyID: "k2", Mode: domain.ModeTest, SecretHash: hash2, Scopes: keyIssued.Scopes, Replaces: "k1"},
				domain.APIKeyRevoked{MerchantHeader: mh(t0), KeyID: "k1", EffectiveAt: t0.Add(grace), Reason: domain.RevokedRotated},
			},
		},
		{
			name: "rotating a key in its grace never extends its life", given: []domain.Event{registered, keyIssued, rotating},
			when: func(m domain.Merchant) ([]domain.Event, error) {
				return m.DecideRotateKey("k1", domain.IssueKeyCommand{KeyID: "k2", SecretHash: hash2}, grace, t0)
			},
			want: []domain.Event{
				domain.APIKeyIssued{MerchantHeader: mh(t0), KeyID: "k2", Mode: domain.ModeTest, SecretHash: hash2, Scopes: keyIssued.Scopes, Replaces: "k1"},
				domain.APIKeyRevoked{MerchantHeader: mh(t0), KeyID: "k1", EffectiveAt: t0.Add(time.Hour), Reason: domain.RevokedRotated},
			},
		},
		{
			name: "rotating a revoked key is refused", given: []domain.Event{registered, keyIssued, revokedNow},
			when: func(m domain.Merchant) ([]domain.Event, error) {
				return m.DecideRotateKey("k1", domain.IssueKeyCommand{KeyID: "k2", SecretHash: hash2}, grace, t0)
			},
			wantErr: domain.ErrAPIKeyRevoked,
		},
		{
			name: "a grace period beyond the bound is refused", given: []domain.Event{registered, keyIssued},
			when: func(m domain.Merchant) ([]domain.Event, error) {
				return m.DecideRotateKey("k1", domain.IssueKeyCommand{KeyID: "k2", SecretHash: hash2}, domain.MaxRotationGrace+time.Second, t0)
			},
			wantErr: domain.ErrInvalidInput,
		},
		{
			name: "a notification URL: the new secret is recorded by id and hint", given: []domain.Event{registered},
			when: func(m domain.Merchant) ([]domain.Event, error) {
				return m.DecideNotificationEndpoint(hookURL, "nsec_1", "whsec_…abcd", t0)
			},
			want: []domain.Event{endpointSet},
		},
		{
			name: "the same notification URL again records nothing", given: []domain.Event{registered, endpointSet},
			when: func(m domain.Merchant) ([]domain.Event, error) {
				return m.DecideNotificationEndpoint(hookURL, "nsec_2", "whsec_…efgh", t0.Add(time.Hour))
			},
		},
		{
			name: "another notification URL keeps the secret", given: []domain.Event{registered, endpointSet},
			when: func(m domain.Merchant) ([]domain.Event, error) {
				return m.DecideNotificationEndpoint("https://shop.example/v2/hooks", "nsec_2", "whsec_…efgh", t0.Add(time.Hour))
			},
			want: []domain.Event{domain.NotificationEndpointSet{MerchantHeader: mh(t0.Add(time.Hour)), URL: "https://shop.example/v2/hooks", SecretID: "nsec_1", SecretHint: "whsec_…abcd"}},
		},
		{
			name: "a new notification URL without a secret is refused", given: []domain.Event{registered},
			when: func(m domain.Merchant) ([]domain.Event, error) {
				return m.DecideNotificationEndpoint(hookURL, "", "", t0)
			},
			wantErr: domain.ErrInvalidInput,
		},
		{
			name:  "a plain http notification URL of a live merchant is refused",
			given: []domain.Event{registered, domain.TossCredentialsSet{MerchantHeader: mh(t0), CredentialID: "c1", KeyHint: "live_sk_…abcd", Mode: domain.ModeLive}},
			when: func(m domain.Merchant) ([]domain.Event, error) {
				return m.DecideNotificationEndpoint("http://shop.example/hooks", "nsec_1", "h", t0)
			},
			wantErr: domain.ErrNotificationURL,
		},
		{
			name: "a notification URL of an unknown merchant", when: func(m domain.Merchant) ([]domain.Event, error) {
				return m.DecideNotificationEndpoint(hookURL, "nsec_1", "h", t0)
			},
			wantErr: domain.ErrMerchantNotFound,
		},
		{
			name: "rotate the notification secret: the old one signs for the grace", given: []domain.Event{registered, endpointSet},
			when: func(m domain.Merchant) ([]domain.Event, error) {
				return m.DecideRotateNotificationSecret("nsec_2", "whsec_…efgh", grace, t0.Add(time.Hour))
			},
			want: []domain.Event{domain.NotificationSecretRotated{MerchantHeader: mh(t0.Add(time.Hour)), SecretID: "nsec_2", SecretHint: "whsec_…efgh",
				PreviousSecretID: "nsec_1", PreviousValidUntil: t0.Add(time.Hour + grace)}},
		},
		{
			name: "rotating without a notification URL is refused", given: []domain.Event{registered},
			when: func(m domain.Merchant) ([]domain.Event, error) {
				return m.DecideRotateNotificationSecret("nsec_2", "h", grace, t0)
			},
			wantErr: domain.ErrNoNotificationURL,
		},
		{
			name: "a notification secret grace beyond the bound is refused", given: []domain.Event{registered, endpointSet},
			when: func(m domain.Merchant) ([]domain.Event, error) {
				return m.DecideRotateNotificationSecret("nsec_2", "h", domain.MaxRotationGrace+time.Second, t0)
			},
			wantErr: domain.ErrInvalidInput,
		},
		{
			name: "remove the notification URL", given: []domain.Event{registered, endpointSet},
			when: func(m domain.Merchant) ([]domain.Event, error) { return m.DecideRemoveNotificationEndpoint(t0) },
			want: []domain.Event{domain.NotificationEndpointRemoved{MerchantHeader: mh(t0)}},
		},
		{
			name: "removing a notification URL that is not set records nothing", given: []domain.Event{registered},
			when: func(m domain.Merchant) ([]domain.Event, error) { return m.DecideRemoveNotificationEndpoint(t0) },
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.when(merchantOf(t, tc.given...))
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("error %v, want %s", err, tc.wantErr.Code)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("events\n got %#v\nwant %#v", got, tc.want)
			}
			// Every decided event survives the store's encoding and folds.
			for _, e := range got {
				b, err := domain.MarshalEvent(e)
				if err != nil {
					t.Fatal(err)
				}
				back, err := domain.UnmarshalEvent(string(e.EventType()), domain.SchemaVersion, b)
				if err != nil {
					t.Fatal(err)
				}
				again, err := domain.MarshalEvent(back)
				if err != nil || string(again) != string(b) {
					t.Fatalf("%s does not survive a round trip:\n%s\n%s", e.EventType(), b, again)
				}
			}
			merchantOf(t, append(append([]domain.Event{}, tc.given...), got...)...)
		})
	}
}

func TestKeyActivity(t *testing.T) {
	m := merchantOf(t, registered, keyIssued,
		domain.APIKeyRevoked{MerchantHeader: mh(t0), KeyID: "k1", EffectiveAt: t0.Add(time.Hour), Reason: domain.RevokedRotated})
	k := m.Keys["k1"]
	if !k.ActiveAt(t0.Add(59*time.Minute)) || k.ActiveAt(t0.Add(time.Hour)) {
		t.Fatalf("a key revoked from t0+1h must work until then and not after: %+v", k)
	}
	if !k.Allows(domain.ScopeRefundsWrite) || k.Allows(domain.ScopeLedgerRead) {
		t.Fatalf("scopes: %v", k.Scopes)
	}
	if m.ActiveKeys(t0) != 1 || m.ActiveKeys(t0.Add(2*time.Hour)) != 0 {
		t.Fatal("ActiveKeys")
	}
}

// The fee rate a settlement row is checked against is the one in force when its transaction
// happened: a contract change does not turn last month's rows into mismatches, and a rate set
// later from an earlier moment corrects that moment on.
func TestTossFeeRateAt(t *testing.T) {
	m := merchantOf(t, registered)
	if _, ok := m.TossFeeRateAt(t0); ok {
		t.Fatal("a merchant without a rate has none at any time")
	}
	day := 24 * time.Hour
	m = merchantOf(t, registered,
		domain.TossFeeRateSet{MerchantHeader: mh(t0), Rate: won("0.03"), EffectiveFrom: t0},
		domain.TossFeeRateSet{MerchantHeader: mh(t0), Rate: won("0.0341"), EffectiveFrom: t0.Add(2 * day)},
		// Set last, from t0 + 1 day: it overrides both from then on.
		domain.TossFeeRateSet{MerchantHeader: mh(t0.Add(day)), Rate: won("0.028"), EffectiveFrom: t0.Add(day)})
	for _, tc := range []struct {
		at   time.Time
		want string // "" for none
	}{
		{t0.Add(-time.Second), ""},
		{t0, "0.03"},
		{t0.Add(day - time.Nanosecond), "0.03"},
		{t0.Add(day), "0.028"},
		{t0.Add(3 * day), "0.028"},
	} {
		got, ok := m.TossFeeRateAt(tc.at)
		if (tc.want == "") == ok || ok && !got.Equal(won(tc.want)) {
			t.Errorf("rate at %s = %s, %v; want %q", tc.at, got, ok, tc.want)
		}
	}
}

func TestParseMerchantIDAndScopes(t *testing.T) {
	for _, ok := range []string{"demo", "merchant-default", "mch_0123456789abcdef", strings.Repeat("a", 64)} {
		if _, err := domain.ParseMerchantID(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "a.b", "a b", "ä", "a\x00", strings.Repeat("a", 65), "a*", "a>"} {
		if _, err := domain.ParseMerchantID(bad); !errors.Is(err, domain.ErrInvalidInput) {
			t.Errorf("%q: %v", bad, err)
		}
	}
	if _, err := domain.ParseScopes([]string{"payments:read", "payments:read"}); err == nil {
		t.Error("a repeated scope must be refused")
	}
	if _, err := domain.ParseScopes(nil); err == nil {
		t.Error("no scope must be refused")
	}
	if s, err := domain.ParseScopes([]string{"ledger:read", " payments:write"}); err != nil || len(s) != 2 {
		t.Errorf("%v %v", s, err)
	}
}

func TestEveryEventTypeIsRegistered(t *testing.T) {
	if len(domain.EventTypes()) != 25 {
		t.Fatalf("registered event types: %v", domain.EventTypes())
	}
	if _, err := domain.UnmarshalEvent("NoSuchEvent", domain.SchemaVersion, []byte(`{}`)); err == nil {
		t.Fatal("an unknown event type must be an error")
	}
}

// The endpoint's state: a URL change keeps where delivery started; a rotation signs with both
// secrets until its grace ends; a removal and a new endpoint start afresh.
func TestNotificationEndpointState(t *testing.T) {
	later := t0.Add(time.Hour)
	m := merchantOf(t, registered, endpointSet,
		domain.NotificationEndpointSet{MerchantHeader: mh(later), URL: "https://shop.example/v2", SecretID: "nsec_1", SecretHint: "h"},
		domain.NotificationSecretRotated{MerchantHeader: mh(later), SecretID: "nsec_2", SecretHint: "h2", PreviousSecretID: "nsec_1", PreviousValidUntil: later.Add(time.Hour)})
	n := m.Notification
	if n.URL != "https://shop.example/v2" || !n.Since.Equal(t0) {
		t.Fatalf("after a URL change: %+v", n)
	}
	if got := n.SecretIDsAt(later.Add(59 * time.Minute)); !reflect.DeepEqual(got, []string{"nsec_2", "nsec_1"}) {
		t.Fatalf("secrets during the grace: %v", got)
	}
	if got := n.SecretIDsAt(later.Add(time.Hour)); !reflect.DeepEqual(got, []string{"nsec_2"}) {
		t.Fatalf("secrets after the grace: %v", got)
	}
	m = merchantOf(t, registered, endpointSet, domain.NotificationEndpointRemoved{MerchantHeader: mh(later)},
		domain.NotificationEndpointSet{MerchantHeader: mh(later.Add(time.Hour)), URL: hookURL, SecretID: "nsec_3", SecretHint: "h3"})
	if n := m.Notification; !n.Since.Equal(later.Add(time.Hour)) || n.PreviousSecretID != "" || n.SecretID != "nsec_3" {
		t.Fatalf("an endpoint set again after its removal: %+v", n)
	}
}

func TestCheckNotificationURL(t *testing.T) {
	for _, tc := range []struct {
		url  string
		mode domain.KeyMode
		ok   bool
	}{
		{"https://shop.example/hooks", domain.ModeLive, true},
		{"HTTPS://shop.example:8443/hooks?x=1", domain.ModeLive, true},
		{"https://[2001:db8::1]/hooks", domain.ModeLive, true},
		{"https://상점.example/훅", domain.ModeLive, true},
		{"http://shop.example/hooks", domain.ModeTest, true},
		{"http://127.0.0.1:8080/hooks", domain.ModeLive, true},
		{"http://localhost/hooks", domain.ModeLive, true},
		{"http://[::1]:9/hooks", domain.ModeLive, true},
		{"http://shop.example/hooks", domain.ModeLive, false},
		{"http://127.0.0.1.shop.example/hooks", domain.ModeLive, false},
		{"", domain.ModeTest, false},
		{"/hooks", domain.ModeTest, false},
		{"shop.example/hooks", domain.ModeTest, false},
		{"ftp://shop.example/hooks", domain.ModeTest, false},
		{"https://user:pw@shop.example/hooks", domain.ModeTest, false},
		{"https://shop.example/hooks#frag", domain.ModeTest, false},
		{"https:///hooks", domain.ModeTest, false},
		{"https://shop.example/ho oks", domain.ModeTest, false},
		{"https://shop.example/\x00", domain.ModeTest, false},
		{"https://shop.example/\n", domain.ModeTest, false},
		{"https://shop.example/\xff", domain.ModeTest, false},
		{"https://shop.example/" + strings.Repeat("a", domain.MaxNotificationURLLen), domain.ModeTest, false},
	} {
		err := domain.CheckNotificationURL(tc.url, tc.mode)
		if tc.ok && err != nil || !tc.ok && !errors.Is(err, domain.ErrNotificationURL) {
			t.Errorf("%q (%s): %v", tc.url, tc.mode, err)
		}
	}
}
