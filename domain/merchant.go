package domain

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/shopspring/decimal"
)

// Merchants. A merchant is an aggregate with its own stream (MerchantStreamName): it is
// registered, gets its Toss credentials, its commission rate and its API keys by events, so
// every change of who may do what, and with which rate an order was booked, is in the log.
//
// The domain never sees secrets: a Toss secret key is stored encrypted outside the log and the
// event names it by a credential id; an API key's secret appears only as its SHA-256.

// MerchantStreamName is the event stream of one merchant.
func MerchantStreamName(id MerchantID) string { return "merchant-" + string(id) }

// MaxMerchantNameLen bounds a merchant's display name.
const MaxMerchantNameLen = 100

// ParseMerchantID validates a merchant id: 1–64 of A-Z a-z 0-9 - _. Ids appear in URLs, stream
// names and message subjects, so nothing else is allowed.
func ParseMerchantID(s string) (MerchantID, error) {
	if len(s) < 1 || len(s) > MaxIdentifierLen {
		return "", Errorf(ErrInvalidInput, "merchantId must be 1 to %d characters, got %d", MaxIdentifierLen, len(s))
	}
	for _, r := range s {
		if !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return "", Errorf(ErrInvalidInput, "merchantId may hold only A-Z, a-z, 0-9, '-' and '_'")
		}
	}
	return MerchantID(s), nil
}

// KeyMode says whether a merchant's keys move real money.
type KeyMode string

const (
	ModeTest KeyMode = "test"
	ModeLive KeyMode = "live"
)

// ModeOfTossKey is the mode of a Toss secret key: live keys start with "live_" (toss-api.md §1).
func ModeOfTossKey(secretKey string) KeyMode {
	if strings.HasPrefix(secretKey, "live_") {
		return ModeLive
	}
	return ModeTest
}

// Scope is a permission an API key carries.
type Scope string

const (
	ScopePaymentsWrite Scope = "payments:write" // checkout and confirm
	ScopePaymentsRead  Scope = "payments:read"  // payment lookups and lists
	ScopeRefundsWrite  Scope = "refunds:write"  // cancels (refunds)
	ScopeLedgerRead    Scope = "ledger:read"    // ledger, trial balance, wallets
)

// AllScopes lists every scope; a merchant's first key carries all of them.
var AllScopes = []Scope{ScopePaymentsWrite, ScopePaymentsRead, ScopeRefundsWrite, ScopeLedgerRead}

// ParseScopes validates a list of scope names: known, no repeats, at least one.
func ParseScopes(names []string) ([]Scope, error) {
	if len(names) == 0 {
		return nil, Errorf(ErrInvalidInput, "at least one scope is required (%s)", scopeList())
	}
	out := make([]Scope, 0, len(names))
	for _, n := range names {
		s := Scope(strings.TrimSpace(n))
		if !slices.Contains(AllScopes, s) {
			return nil, Errorf(ErrInvalidInput, "unknown scope %q (known: %s)", truncate(n, 40), scopeList())
		}
		if slices.Contains(out, s) {
			return nil, Errorf(ErrInvalidInput, "scope %q is listed twice", s)
		}
		out = append(out, s)
	}
	return out, nil
}

func scopeList() string {
	names := make([]string, len(AllScopes))
	for i, s := range AllScopes {
		names[i] = string(s)
	}
	return strings.Join(names, ", ")
}

// Revocation reasons.
const (
	RevokedByRequest = "revoked"
	RevokedRotated   = "rotated"
)

// APIKey is one key of a merchant.
type APIKey struct {
	ID         APIKeyID
	Mode       KeyMode
	SecretHash string
	Scopes     []Scope
	IssuedAt   time.Time
	Replaces   APIKeyID
	// RevokedAt is when the key stops working; zero while no revocation is recorded.
	RevokedAt time.Time
	Reason    string
}

// ActiveAt reports whether the key works at t.
func (k APIKey) ActiveAt(t time.Time) bool { return k.RevokedAt.IsZero() || t.Before(k.RevokedAt) }

// Allows reports whether the key carries scope s.
func (k APIKey) Allows(s Scope) bool { return slices.Contains(k.Scopes, s) }

// Merchant is the state of one merchant, rebuilt from its events by RebuildMerchant.
type Merchant struct {
	ID             MerchantID
	Name           string
	RegisteredAt   time.Time
	Mode           KeyMode // of its Toss key; test until a live key is set
	TossCredential string  // the credential id of the current Toss key; "" when none is set
	TossKeyHint    string
	CommissionRate decimal.Decimal
	// TossFeeRates are the contract's fee rates with Toss in the order they were set; at any
	// time the rate in force is that of the last one set whose From is not after it
	// (TossFeeRateAt).
	TossFeeRates []FeeRatePeriod
	Keys         map[APIKeyID]APIKey
	KeyOrder     []APIKeyID // in the order they were issued
	// Notification is where the merchant's payment events are POSTed; its URL is "" while none
	// is set.
	Notification NotificationEndpoint
	Version      int64
}

// RebuildMerchant folds a merchant's events, in stream order.
func RebuildMerchant(events []Event) (Merchant, error) {
	var m Merchant
	for _, e := range events {
		if err := m.Apply(e); err != nil {
			return Merchant{}, err
		}
	}
	return m, nil
}

// Apply evolves the merchant by one event; an event of another aggregate is an error.
func (m *Merchant) Apply(e Event) error {
	switch e := e.(type) {
	case MerchantRegistered:
		m.ID, m.Name, m.RegisteredAt = e.MerchantID, e.Name, e.At
		m.Mode, m.CommissionRate = ModeTest, decimal.Zero
	case TossCredentialsSet:
		m.TossCredential, m.TossKeyHint, m.Mode = e.CredentialID, e.KeyHint, e.Mode
	case CommissionRateChanged:
		m.CommissionRate = e.Rate
	case TossFeeRateSet:
		m.TossFeeRates = append(slices.Clone(m.TossFeeRates), FeeRatePeriod{From: e.EffectiveFrom, Rate: e.Rate})
	case APIKeyIssued:
		if m.Keys == nil {
			m.Keys = map[APIKeyID]APIKey{}
		}
		m.Keys[e.KeyID] = APIKey{ID: e.KeyID, Mode: e.Mode, SecretHash: e.SecretHash,
			Scopes: slices.Clone(e.Scopes), IssuedAt: e.At, Replaces: e.Replaces}
		m.KeyOrder = append(m.KeyOrder, e.KeyID)
	case APIKeyRevoked:
		k := m.Keys[e.KeyID]
		k.RevokedAt, k.Reason = e.EffectiveAt, e.Reason
		m.Keys[e.KeyID] = k
	case NotificationEndpointSet:
		if m.Notification.URL == "" {
			m.Notification = NotificationEndpoint{Since: e.At}
		}
		m.Notification.URL, m.Notification.SecretID, m.Notification.SecretHint = e.URL, e.SecretID, e.SecretHint
	case NotificationSecretRotated:
		n := &m.Notification
		n.PreviousSecretID, n.PreviousValidUntil = e.PreviousSecretID, e.PreviousValidUntil
		n.SecretID, n.SecretHint = e.SecretID, e.SecretHint
	case NotificationEndpointRemoved:
		m.Notification = NotificationEndpoint{}
	default:
		return fmt.Errorf("domain: merchant: unknown event %T", e)
	}
	m.Version++
	return nil
}

// Merchant errors.
var (
	ErrMerchantNotFound      = &Error{Kind: KindNotFound, Code: "MERCHANT_NOT_FOUND", Message: "merchant not found"}
	ErrMerchantExists        = &Error{Kind: KindConflict, Code: "MERCHANT_EXISTS", Message: "a merchant with this id exists"}
	ErrMerchantNotConfigured = &Error{Kind: KindConflict, Code: "MERCHANT_NOT_CONFIGURED", Message: "the merchant has no Toss secret key"}
	ErrAPIKeyNotFound        = &Error{Kind: KindNotFound, Code: "API_KEY_NOT_FOUND", Message: "API key not found"}
	ErrAPIKeyRevoked         = &Error{Kind: KindConflict, Code: "API_KEY_REVOKED", Message: "API key is revoked"}
	ErrTooManyAPIKeys        = &Error{Kind: KindConflict, Code: "TOO_MANY_API_KEYS", Message: "too many active API keys"}
	ErrNotificationURL       = &Error{Kind: KindInvalid, Code: "INVALID_NOTIFICATION_URL", Message: "invalid notification URL"}
	ErrNoNotificationURL     = &Error{Kind: KindNotFound, Code: "NOTIFICATION_URL_NOT_SET", Message: "the merchant has no notification URL"}
)

// MaxActiveAPIKeys bounds the keys a merchant may hold at once (rotations in their grace
// period count), so a leaked admin token cannot flood the auth path.
const MaxActiveAPIKeys = 20

// RegisterMerchant decides a new merchant.
func RegisterMerchant(id MerchantID, name string, now time.Time) ([]Event, error) {
	var errs []error
	if _, err := ParseMerchantID(string(id)); err != nil {
		errs = append(errs, err)
	}
	if err := checkText("name", name, MaxMerchantNameLen); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, joinInvalid(errs)
	}
	return []Event{MerchantRegistered{MerchantHeader: MerchantHeader{MerchantID: id, At: now}, Name: name}}, nil
}

func (m Merchant) header(now time.Time) MerchantHeader {
	return MerchantHeader{MerchantID: m.ID, At: now}
}

func (m Merchant) registered() error {
	if m.ID == "" {
		return Errorf(ErrMerchantNotFound, "no such merchant")
	}
	return nil
}

// DecideTossCredentials records a new Toss secret key, stored under credentialID.
func (m Merchant) DecideTossCredentials(credentialID, keyHint string, mode KeyMode, now time.Time) ([]Event, error) {
	if err := m.registered(); err != nil {
		return nil, err
	}
	if credentialID == "" || (mode != ModeTest && mode != ModeLive) {
		return nil, Errorf(ErrInvalidInput, "a Toss credential needs an id and a mode")
	}
	return []Event{TossCredentialsSet{MerchantHeader: m.header(now), CredentialID: credentialID, KeyHint: keyHint, Mode: mode}}, nil
}

// DecideCommissionRate records a new commission rate; the current rate again records nothing.
func (m Merchant) DecideCommissionRate(rate decimal.Decimal, now time.Time) ([]Event, error) {
	if err := m.registered(); err != nil {
		return nil, err
	}
	if err := CheckCommissionRate(rate); err != nil {
		return nil, err
	}
	if rate.Equal(m.CommissionRate) {
		return nil, nil
	}
	return []Event{CommissionRateChanged{MerchantHeader: m.header(now), Rate: rate}}, nil
}

// FeeRatePeriod is a Toss fee rate and the moment from which it applies.
type FeeRatePeriod struct {
	From time.Time
	Rate decimal.Decimal
}

// MaxFeeRateScale bounds the decimal places of a fee rate: Toss quotes rates such as 3.41%
// (0.0341); six places are more than any contract needs and keep the figure readable.
const MaxFeeRateScale = 6

// CheckTossFeeRate validates a contract fee rate: a fraction at least 0 and below 1, with at most
// MaxFeeRateScale decimal places.
func CheckTossFeeRate(rate decimal.Decimal) error {
	if rate.Sign() < 0 || rate.GreaterThanOrEqual(decimal.NewFromInt(1)) {
		return Errorf(ErrInvalidInput, "Toss fee rate must be at least 0 and below 1, got %s", rate)
	}
	if -rate.Exponent() > MaxFeeRateScale && !rate.Equal(rate.Round(MaxFeeRateScale)) {
		return Errorf(ErrInvalidInput, "Toss fee rate %s has more than %d decimal places", rate, MaxFeeRateScale)
	}
	return nil
}

// TossFeeRateAt is the contract fee rate in force at t: that of the last rate set whose From is
// not after t, so a later event overrides earlier ones from its From on. ok is false before any
// rate applies: such a transaction is not checked, since no contract rate is on record for it.
func (m Merchant) TossFeeRateAt(t time.Time) (rate decimal.Decimal, ok bool) {
	for i := len(m.TossFeeRates) - 1; i >= 0; i-- {
		if !m.TossFeeRates[i].From.After(t) {
			return m.TossFeeRates[i].Rate, true
		}
	}
	return decimal.Decimal{}, false
}

// DecideTossFeeRate records the merchant's contract fee rate with Toss from from on (now when
// from is zero; a future date schedules a contract change). It records nothing when the rate
// already applies from from on.
func (m Merchant) DecideTossFeeRate(rate decimal.Decimal, from, now time.Time) ([]Event, error) {
	if err := m.registered(); err != nil {
		return nil, err
	}
	if err := CheckTossFeeRate(rate); err != nil {
		return nil, err
	}
	if from.IsZero() {
		from = now
	}
	if current, ok := m.TossFeeRateAt(from); ok && current.Equal(rate) &&
		!slices.ContainsFunc(m.TossFeeRates, func(p FeeRatePeriod) bool { return p.From.After(from) }) {
		return nil, nil
	}
	return []Event{TossFeeRateSet{MerchantHeader: m.header(now), Rate: rate, EffectiveFrom: from}}, nil
}

// IssueKeyCommand asks for a new API key whose secret the caller generated.
type IssueKeyCommand struct {
	KeyID      APIKeyID
	SecretHash string // hex SHA-256 of the secret
	Scopes     []Scope
}

// ActiveKeys counts the keys that work at now.
func (m Merchant) ActiveKeys(now time.Time) int {
	n := 0
	for _, k := range m.Keys {
		if k.ActiveAt(now) {
			n++
		}
	}
	return n
}

// DecideIssueKey records a new API key in the merchant's mode.
func (m Merchant) DecideIssueKey(cmd IssueKeyCommand, now time.Time) ([]Event, error) {
	if err := m.registered(); err != nil {
		return nil, err
	}
	if err := m.checkNewKey(cmd, now); err != nil {
		return nil, err
	}
	return []Event{m.issued(cmd, "", now)}, nil
}

func (m Merchant) checkNewKey(cmd IssueKeyCommand, now time.Time) error {
	if cmd.KeyID == "" || len(cmd.SecretHash) != 64 {
		return Errorf(ErrInvalidInput, "an API key needs an id and a SHA-256 secret hash")
	}
	if _, taken := m.Keys[cmd.KeyID]; taken {
		return Errorf(ErrInvalidInput, "API key id %s is taken", cmd.KeyID)
	}
	scopes := make([]string, len(cmd.Scopes))
	for i, s := range cmd.Scopes {
		scopes[i] = string(s)
	}
	if _, err := ParseScopes(scopes); err != nil {
		return err
	}
	if m.ActiveKeys(now) >= MaxActiveAPIKeys {
		return Errorf(ErrTooManyAPIKeys, "merchant %s already has %d active API keys; revoke one first", m.ID, MaxActiveAPIKeys)
	}
	return nil
}

func (m Merchant) issued(cmd IssueKeyCommand, replaces APIKeyID, now time.Time) APIKeyIssued {
	return APIKeyIssued{MerchantHeader: m.header(now), KeyID: cmd.KeyID, Mode: m.Mode,
		SecretHash: cmd.SecretHash, Scopes: slices.Clone(cmd.Scopes), Replaces: replaces}
}

// DecideRevokeKey stops a key now. A key already stopped records nothing; a key in a
// rotation's grace period is stopped now.
func (m Merchant) DecideRevokeKey(id APIKeyID, now time.Time) ([]Event, error) {
	if err := m.registered(); err != nil {
		return nil, err
	}
	k, ok := m.Keys[id]
	if !ok {
		return nil, Errorf(ErrAPIKeyNotFound, "merchant %s has no API key %s", m.ID, id)
	}
	if !k.ActiveAt(now) {
		return nil, nil
	}
	return []Event{APIKeyRevoked{MerchantHeader: m.header(now), KeyID: id, EffectiveAt: now, Reason: RevokedByRequest}}, nil
}

// MaxRotationGrace bounds a rotation's grace period: a rotation is not a way to keep a key for
// ever.
const MaxRotationGrace = 30 * 24 * time.Hour

// DecideRotateKey issues a new key with the scopes of key old and lets old work for grace more
// (0 to MaxRotationGrace).
func (m Merchant) DecideRotateKey(old APIKeyID, next IssueKeyCommand, grace time.Duration, now time.Time) ([]Event, error) {
	if err := m.registered(); err != nil {
		return nil, err
	}
	k, ok := m.Keys[old]
	switch {
	case !ok:
		return nil, Errorf(ErrAPIKeyNotFound, "merchant %s has no API key %s", m.ID, old)
	case !k.ActiveAt(now):
		return nil, Errorf(ErrAPIKeyRevoked, "API key %s is revoked; issue a new key instead", old)
	case grace < 0 || grace > MaxRotationGrace:
		return nil, Errorf(ErrInvalidInput, "the grace period must be from 0s to %s, not %s", MaxRotationGrace, grace)
	}
	next.Scopes = slices.Clone(k.Scopes)
	if err := m.checkNewKey(next, now); err != nil {
		return nil, err
	}
	effective := now.Add(grace)
	if !k.RevokedAt.IsZero() && k.RevokedAt.Before(effective) {
		effective = k.RevokedAt // a rotation never extends a key's life
	}
	return []Event{
		m.issued(next, old, now),
		APIKeyRevoked{MerchantHeader: m.header(now), KeyID: old, EffectiveAt: effective, Reason: RevokedRotated},
	}, nil
}

// NotificationEndpoint is where a merchant's payment events are POSTed and which secrets sign
// them.
type NotificationEndpoint struct {
	URL        string
	SecretID   string // the sealed signing secret's id
	SecretHint string
	// Since is when the endpoint was set while none was: deliveries start with the events
	// published from then on (a new endpoint does not receive the whole history). Changing the
	// URL keeps it.
	Since time.Time
	// PreviousSecretID still signs, beside SecretID, until PreviousValidUntil: a rotation's grace.
	PreviousSecretID   string
	PreviousValidUntil time.Time
}

// Set reports whether an endpoint is set.
func (n NotificationEndpoint) Set() bool { return n.URL != "" }

// SecretIDsAt lists the ids of the secrets that sign a delivery at t: the current one, then the
// previous one while a rotation's grace runs.
func (n NotificationEndpoint) SecretIDsAt(t time.Time) []string {
	if !n.Set() {
		return nil
	}
	ids := []string{n.SecretID}
	if n.PreviousSecretID != "" && t.Before(n.PreviousValidUntil) {
		ids = append(ids, n.PreviousSecretID)
	}
	return ids
}

// MaxNotificationURLLen bounds a notification URL, in bytes.
const MaxNotificationURLLen = 2048

// CheckNotificationURL validates where a merchant in mode wants its events POSTed: an absolute
// https URL (plain http only for a merchant in test mode or a loopback host, where nothing
// crosses a network), without user name or password (a secret in a URL ends up in logs), without
// a fragment (never sent), at most MaxNotificationURLLen bytes of valid UTF-8 without control
// characters or spaces. Every problem found is reported. The adapter parses the URL with a real
// parser as well; this is the rule, written without net/url to keep the domain pure.
func CheckNotificationURL(raw string, mode KeyMode) error {
	bad := func(format string, args ...any) error { return Errorf(ErrNotificationURL, format, args...) }
	switch {
	case raw == "":
		return bad("url is required")
	case len(raw) > MaxNotificationURLLen:
		return bad("url must be at most %d bytes, got %d", MaxNotificationURLLen, len(raw))
	case !utf8.ValidString(raw):
		return bad("url must be valid UTF-8")
	}
	for _, r := range raw {
		if r <= ' ' || r == 0x7f || (r >= 0x80 && r <= 0x9f) {
			return bad("url must not contain spaces or control characters")
		}
	}
	scheme, rest, ok := strings.Cut(raw, "://")
	scheme = strings.ToLower(scheme)
	if !ok || (scheme != "https" && scheme != "http") {
		return bad("url must be an absolute https URL such as https://shop.example/payments/events")
	}
	authority := rest
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		authority = rest[:i]
	}
	var errs []error
	if strings.Contains(authority, "@") {
		errs = append(errs, bad("url must not hold a user name or password"))
	}
	if strings.Contains(rest, "#") {
		errs = append(errs, bad("url must not hold a fragment (#…): it is never sent"))
	}
	host := hostOf(authority[strings.LastIndex(authority, "@")+1:])
	if host == "" {
		errs = append(errs, bad("url must name a host"))
	}
	if scheme == "http" && mode != ModeTest && !loopbackHost(host) {
		errs = append(errs, bad("url must use https: plain http is allowed only in test mode or to a loopback host"))
	}
	if len(errs) == 1 {
		return errs[0]
	}
	if len(errs) > 1 {
		msgs := make([]string, len(errs))
		for i, e := range errs {
			msgs[i] = e.(*Error).Message
		}
		return bad("%s", strings.Join(msgs, "; "))
	}
	return nil
}

// hostOf is the host of an authority without its port; an IPv6 literal keeps its brackets.
func hostOf(authority string) string {
	if strings.HasPrefix(authority, "[") {
		if i := strings.Index(authority, "]"); i > 0 {
			return authority[:i+1]
		}
		return ""
	}
	if i := strings.LastIndex(authority, ":"); i >= 0 {
		return authority[:i]
	}
	return authority
}

// loopbackHost reports whether host is this machine: localhost, 127.0.0.0/8 or [::1].
func loopbackHost(host string) bool {
	h := strings.ToLower(host)
	if h == "localhost" || h == "[::1]" {
		return true
	}
	parts := strings.Split(h, ".")
	if len(parts) != 4 || parts[0] != "127" {
		return false
	}
	for _, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || n > 255 || p == "" {
			return false
		}
	}
	return true
}

// DecideNotificationEndpoint records where the merchant's events are POSTed. With no endpoint
// set, the new one needs a signing secret, stored by the caller under secretID; with one set,
// the URL changes and the secret stays (secretID is ignored), and the same URL again records
// nothing.
func (m Merchant) DecideNotificationEndpoint(url, secretID, secretHint string, now time.Time) ([]Event, error) {
	if err := m.registered(); err != nil {
		return nil, err
	}
	if err := CheckNotificationURL(url, m.Mode); err != nil {
		return nil, err
	}
	n := m.Notification
	if n.Set() {
		if n.URL == url {
			return nil, nil
		}
		secretID, secretHint = n.SecretID, n.SecretHint
	} else if secretID == "" {
		return nil, Errorf(ErrInvalidInput, "a new notification endpoint needs a signing secret")
	}
	return []Event{NotificationEndpointSet{MerchantHeader: m.header(now), URL: url, SecretID: secretID, SecretHint: secretHint}}, nil
}

// DecideRotateNotificationSecret makes the secret stored under secretID the signing secret; the
// current one goes on signing beside it for grace (0 to MaxRotationGrace). A previous secret
// still in its grace stops signing now: at most two signatures go with a delivery.
func (m Merchant) DecideRotateNotificationSecret(secretID, secretHint string, grace time.Duration, now time.Time) ([]Event, error) {
	if err := m.registered(); err != nil {
		return nil, err
	}
	switch {
	case !m.Notification.Set():
		return nil, Errorf(ErrNoNotificationURL, "merchant %s has no notification URL; set one first", m.ID)
	case grace < 0 || grace > MaxRotationGrace:
		return nil, Errorf(ErrInvalidInput, "the grace period must be from 0s to %s, not %s", MaxRotationGrace, grace)
	case secretID == "" || secretID == m.Notification.SecretID:
		return nil, Errorf(ErrInvalidInput, "a rotation needs a new signing secret")
	}
	return []Event{NotificationSecretRotated{MerchantHeader: m.header(now), SecretID: secretID, SecretHint: secretHint,
		PreviousSecretID: m.Notification.SecretID, PreviousValidUntil: now.Add(grace)}}, nil
}

// DecideRemoveNotificationEndpoint stops the merchant's notifications; with none set it records
// nothing.
func (m Merchant) DecideRemoveNotificationEndpoint(now time.Time) ([]Event, error) {
	if err := m.registered(); err != nil {
		return nil, err
	}
	if !m.Notification.Set() {
		return nil, nil
	}
	return []Event{NotificationEndpointRemoved{MerchantHeader: m.header(now)}}, nil
}
