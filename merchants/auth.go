package merchants

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/paymentledger/ledger/domain"
)

// Principal is who an authenticated API key acts for.
type Principal struct {
	Merchant domain.MerchantID
	KeyID    domain.APIKeyID
	Mode     domain.KeyMode
	Scopes   []domain.Scope
}

// AuthError is a failed authentication. Reason is one of the Reason… constants; the message a
// client gets never says which, so a guesser learns nothing.
type AuthError struct{ Reason string }

func (e *AuthError) Error() string { return "merchants: authentication failed: " + e.Reason }

// Reasons of AuthError.
const (
	ReasonMalformed  = "malformed"      // not an API key of this system
	ReasonUnknownKey = "unknown_key"    // no such key id
	ReasonBadSecret  = "bad_secret"     // the key id exists, the secret is wrong
	ReasonRevoked    = "revoked"        // revoked, or past a rotation's grace period
	ReasonBroken     = "broken_history" // the merchant's stored history failed verification
)

// Authenticate checks an API key: its id must exist, its secret's hash match (in constant time)
// and it must not be revoked at this moment. The merchant's state is at most CacheTTL old, so a
// revocation is refused on every instance within CacheTTL. A failure is an *AuthError; any
// other error means the database could not be asked.
func (s *Service) Authenticate(ctx context.Context, apiKey string) (Principal, error) {
	mode, kid, secret, err := parseAPIKey(apiKey)
	if err != nil {
		return Principal{}, &AuthError{Reason: ReasonMalformed}
	}
	merchant, err := s.merchantOfKey(ctx, kid)
	if err != nil {
		return Principal{}, err
	}
	m, err := s.state(ctx, merchant)
	if errors.Is(err, domain.ErrMerchantNotFound) {
		return Principal{}, &AuthError{Reason: ReasonUnknownKey}
	}
	if errors.Is(err, domain.ErrHistoryBroken) {
		return Principal{}, &AuthError{Reason: ReasonBroken}
	}
	if err != nil {
		return Principal{}, err
	}
	k, ok := m.Keys[kid]
	if !ok {
		// The index names this merchant, so the key was issued: a state cached before the issue
		// (on this instance, up to CacheTTL ago) does not know it yet. Read the stream.
		if m, err = s.load(ctx, merchant); errors.Is(err, domain.ErrHistoryBroken) {
			return Principal{}, &AuthError{Reason: ReasonBroken}
		} else if err != nil {
			return Principal{}, err
		}
		k, ok = m.Keys[kid]
	}
	switch {
	case !ok: // indexed, but its event never got appended
		return Principal{}, &AuthError{Reason: ReasonUnknownKey}
	case !secretMatches(secret, k.SecretHash) || k.Mode != mode:
		return Principal{}, &AuthError{Reason: ReasonBadSecret}
	case !k.ActiveAt(s.cfg.Now()):
		return Principal{}, &AuthError{Reason: ReasonRevoked}
	}
	return Principal{Merchant: m.ID, KeyID: kid, Mode: k.Mode, Scopes: k.Scopes}, nil
}

// merchantOfKey finds the merchant a key id belongs to. The mapping never changes, so it is
// cached for good; an unknown id is asked again every time (rate limits bound the cost).
func (s *Service) merchantOfKey(ctx context.Context, kid domain.APIKeyID) (domain.MerchantID, error) {
	if m, ok := s.index.Get(kid); ok {
		return m, nil
	}
	var m domain.MerchantID
	err := s.pool.QueryRow(ctx, `SELECT merchant_id FROM api_key_index WHERE key_id = $1`, kid).Scan(&m)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", &AuthError{Reason: ReasonUnknownKey}
	}
	if err != nil {
		return "", fmt.Errorf("merchants: key index: %w", err)
	}
	s.index.Add(kid, m)
	return m, nil
}

// CheckKey reports whether the merchant's key kid still works, without its secret: for holders
// of a key Authenticate already accepted (the back office's sessions keep the key id, never the
// key). It reads the merchant's state as Authenticate does, at most CacheTTL old, so a
// revocation ends such holders' access on every instance within CacheTTL. A key that is unknown,
// of another merchant, revoked or past its rotation's grace, or a merchant whose history failed
// verification, is an *AuthError; any other error means the database could not be asked.
func (s *Service) CheckKey(ctx context.Context, merchant domain.MerchantID, kid domain.APIKeyID) (Principal, error) {
	m, err := s.state(ctx, merchant)
	switch {
	case errors.Is(err, domain.ErrMerchantNotFound):
		return Principal{}, &AuthError{Reason: ReasonUnknownKey}
	case errors.Is(err, domain.ErrHistoryBroken):
		return Principal{}, &AuthError{Reason: ReasonBroken}
	case err != nil:
		return Principal{}, err
	}
	k, ok := m.Keys[kid]
	switch {
	case !ok:
		return Principal{}, &AuthError{Reason: ReasonUnknownKey}
	case !k.ActiveAt(s.cfg.Now()):
		return Principal{}, &AuthError{Reason: ReasonRevoked}
	}
	return Principal{Merchant: m.ID, KeyID: kid, Mode: k.Mode, Scopes: k.Scopes}, nil
}
