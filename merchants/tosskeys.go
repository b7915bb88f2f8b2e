package merchants

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/psp/toss"
	"github.com/paymentledger/ledger/secrets"
)

// ErrNoKeyring: a Toss secret key was to be sealed or opened by a service built without a
// keyring (SECRETS_KEY).
var ErrNoKeyring = errors.New("merchants: no key-encryption key (SECRETS_KEY) to seal or open Toss secret keys")

// aad binds a sealed secret to its merchant, credential and kind: a row copied elsewhere does
// not open. merchant_secrets holds Toss secret keys (credential ids cred_…) and notification
// signing secrets (nsec_…); the id's prefix says which, so neither opens as the other.
func aad(merchant domain.MerchantID, credential string) []byte {
	kind := "toss-secret-key"
	if strings.HasPrefix(credential, notificationSecretIDPrefix) {
		kind = "notification-signing-secret"
	}
	return []byte(kind + "\x00" + string(merchant) + "\x00" + credential)
}

// storeSecret validates a Toss secret key, seals it and stores it under a new credential id.
func (s *Service) storeSecret(ctx context.Context, id domain.MerchantID, secretKey string) (string, error) {
	if err := toss.ValidateSecretKey(secretKey); err != nil {
		return "", domain.Errorf(domain.ErrInvalidInput, "tossSecretKey %v", err)
	}
	return s.seal(ctx, id, "cred_", secretKey)
}

// seal stores a secret of the merchant sealed under a new id with prefix, written before the
// event that names it (see the package doc).
func (s *Service) seal(ctx context.Context, id domain.MerchantID, prefix, secret string) (string, error) {
	if s.cfg.Keyring == nil {
		return "", ErrNoKeyring
	}
	cred, err := newID(prefix)
	if err != nil {
		return "", err
	}
	sealed, err := s.cfg.Keyring.Seal([]byte(secret), aad(id, cred))
	if err != nil {
		return "", err
	}
	_, err = s.pool.Exec(ctx, `
		INSERT INTO merchant_secrets (credential_id, merchant_id, kek_id, nonce, ciphertext) VALUES ($1, $2, $3, $4, $5)`,
		cred, id, sealed.KeyID, sealed.Nonce, sealed.Ciphertext)
	if err != nil {
		return "", fmt.Errorf("merchants: store a secret of %s: %w", id, err)
	}
	return cred, nil
}

// openSecret reads and opens the merchant's secret stored under credential.
func (s *Service) openSecret(ctx context.Context, id domain.MerchantID, credential string) (string, error) {
	if s.cfg.Keyring == nil {
		return "", ErrNoKeyring
	}
	var sealed secrets.Sealed
	var owner domain.MerchantID
	err := s.pool.QueryRow(ctx, `SELECT merchant_id, kek_id, nonce, ciphertext FROM merchant_secrets WHERE credential_id = $1`, credential).
		Scan(&owner, &sealed.KeyID, &sealed.Nonce, &sealed.Ciphertext)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && owner != id) {
		return "", fmt.Errorf("merchants: the secret %s of merchant %s is not stored", credential, id)
	}
	if err != nil {
		return "", fmt.Errorf("merchants: read secret %s of %s: %w", credential, id, err)
	}
	plain, err := s.cfg.Keyring.Open(sealed, aad(id, credential))
	if err != nil {
		return "", fmt.Errorf("merchants: secret %s of %s: %w", credential, id, err)
	}
	return string(plain), nil
}

// RotationResult counts what a re-seal did.
type RotationResult struct {
	Resealed int    `json:"resealed"` // sealed under an older key, now under the current one
	Current  int    `json:"current"`  // already under the current key
	KeyID    string `json:"keyId"`    // the current key-encryption key's id
}

// ResealSecrets re-seals every stored secret (Toss keys and notification signing secrets) that
// is not sealed under the current key-encryption key, so a previous key (SECRETS_KEY_PREVIOUS)
// can be retired. Each row is re-sealed in its own short statement, conditional on the row
// being unchanged, so it is safe to run while paymentd serves and to run again after an
// interruption. progress, if not nil, is called after each row.
func (s *Service) ResealSecrets(ctx context.Context, progress func(done, total int)) (RotationResult, error) {
	if s.cfg.Keyring == nil {
		return RotationResult{}, ErrNoKeyring
	}
	res := RotationResult{KeyID: s.cfg.Keyring.CurrentKeyID()}
	rows, err := s.pool.Query(ctx, `SELECT credential_id, merchant_id, kek_id, nonce, ciphertext FROM merchant_secrets ORDER BY credential_id`)
	if err != nil {
		return res, fmt.Errorf("merchants: reseal: %w", err)
	}
	type row struct {
		cred     string
		merchant domain.MerchantID
		sealed   secrets.Sealed
	}
	all, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
		var x row
		err := r.Scan(&x.cred, &x.merchant, &x.sealed.KeyID, &x.sealed.Nonce, &x.sealed.Ciphertext)
		return x, err
	})
	if err != nil {
		return res, fmt.Errorf("merchants: reseal: %w", err)
	}
	for i, x := range all {
		if x.sealed.KeyID == res.KeyID {
			res.Current++
		} else {
			plain, err := s.cfg.Keyring.Open(x.sealed, aad(x.merchant, x.cred))
			if err != nil {
				return res, fmt.Errorf("merchants: reseal the secret %s of %s: %w", x.cred, x.merchant, err)
			}
			next, err := s.cfg.Keyring.Seal(plain, aad(x.merchant, x.cred))
			if err != nil {
				return res, err
			}
			if _, err := s.pool.Exec(ctx, `
				UPDATE merchant_secrets SET kek_id = $2, nonce = $3, ciphertext = $4, resealed_at = now()
				WHERE credential_id = $1 AND kek_id = $5`, x.cred, next.KeyID, next.Nonce, next.Ciphertext, x.sealed.KeyID); err != nil {
				return res, fmt.Errorf("merchants: reseal %s: %w", x.cred, err)
			}
			res.Resealed++
		}
		if progress != nil {
			progress(i+1, len(all))
		}
	}
	return res, nil
}
