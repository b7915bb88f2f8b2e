package merchants

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/paymentledger/ledger/domain"
)

// Merchant notifications: where a merchant's payment events are POSTed (package notify
// delivers them) and the secret that signs them. The secret is sealed in merchant_secrets like a
// Toss key, under an id starting with notificationSecretIDPrefix; the events name it by id and
// hint only, and it is shown once, when it is made.

const (
	// SigningSecretPrefix starts every signing secret, so that one found in a log or a
	// repository is recognised for what it is.
	SigningSecretPrefix        = "whsec_"
	notificationSecretIDPrefix = "nsec_"
	// DefaultNotificationGrace is how long a rotated signing secret goes on signing when the
	// rotation names no grace period.
	DefaultNotificationGrace = 24 * time.Hour
)

// NotificationSetting is the answer to a change of a merchant's notifications. SigningSecret is
// set only when a new secret was made: it is shown once and never again.
type NotificationSetting struct {
	MerchantID    domain.MerchantID `json:"merchantId"`
	URL           string            `json:"url,omitempty"`
	SigningSecret string            `json:"signingSecret,omitempty"`
	SecretHint    string            `json:"secretHint,omitempty"`
	// PreviousSecretValidUntil is the end of a rotation's grace: until then deliveries carry a
	// signature with the previous secret too.
	PreviousSecretValidUntil *time.Time `json:"previousSecretValidUntil,omitempty"`
}

// newSigningSecret returns whsec_ and 32 random bytes in unpadded base64url, and its hint.
func newSigningSecret() (secret, hint string, err error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", "", fmt.Errorf("merchants: new signing secret: %w", err)
	}
	secret = SigningSecretPrefix + base64.RawURLEncoding.EncodeToString(raw)
	return secret, SigningSecretPrefix + "…" + secret[len(secret)-4:], nil
}

// checkURL is the adapter's half of the URL rule: the domain's rule (domain.CheckNotificationURL),
// and a real URL parser must accept it too, so what is stored is what an HTTP client can call.
func checkURL(raw string, mode domain.KeyMode) error {
	if err := domain.CheckNotificationURL(raw, mode); err != nil {
		return err
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Hostname() == "" || u.User != nil || u.Opaque != "" {
		return domain.Errorf(domain.ErrNotificationURL, "url is not a valid absolute URL")
	}
	return nil
}

// SetNotificationURL sets where the merchant's payment events are POSTed. With no URL set it
// makes a signing secret, returned once; with one set it changes the URL and keeps the secret
// (and the position of delivery). An invalid URL stores and records nothing.
func (s *Service) SetNotificationURL(ctx context.Context, id domain.MerchantID, rawURL, actor string) (NotificationSetting, error) {
	m, err := s.load(ctx, id)
	if err != nil {
		return NotificationSetting{}, err
	}
	if err := checkURL(rawURL, m.Mode); err != nil {
		return NotificationSetting{}, err
	}
	var secret, secretID, hint string
	if !m.Notification.Set() {
		if secret, hint, err = newSigningSecret(); err != nil {
			return NotificationSetting{}, err
		}
		if secretID, err = s.seal(ctx, id, notificationSecretIDPrefix, secret); err != nil {
			return NotificationSetting{}, err
		}
	}
	m, events, err := s.update(ctx, id, actor, func(m domain.Merchant) ([]domain.Event, error) {
		if !m.Notification.Set() && secretID == "" {
			return nil, domain.Errorf(domain.ErrConcurrentModification, "the notification URL of %s was removed meanwhile; try again", id)
		}
		return m.DecideNotificationEndpoint(rawURL, secretID, hint, s.cfg.Now())
	})
	if err != nil {
		return NotificationSetting{}, err
	}
	out := s.notificationSetting(m)
	if len(events) > 0 && events[0].(domain.NotificationEndpointSet).SecretID == secretID && secretID != "" {
		out.SigningSecret = secret
	}
	if len(events) > 0 {
		s.logger.InfoContext(ctx, "merchant notification URL set", "merchantId", id, "url", rawURL, "secret", m.Notification.SecretHint,
			"newSecret", out.SigningSecret != "", "actor", actor)
	}
	return out, nil
}

// RotateNotificationSecret makes a new signing secret, returned once; the current one goes on
// signing beside it for grace, so the merchant's receiver can switch without refusing a
// delivery.
func (s *Service) RotateNotificationSecret(ctx context.Context, id domain.MerchantID, grace time.Duration, actor string) (NotificationSetting, error) {
	m, err := s.load(ctx, id)
	if err != nil {
		return NotificationSetting{}, err
	}
	// Decide once with a placeholder id first, so that a refused rotation stores no secret.
	if _, err := m.DecideRotateNotificationSecret(notificationSecretIDPrefix+"dry-run", "", grace, s.cfg.Now()); err != nil {
		return NotificationSetting{}, err
	}
	secret, hint, err := newSigningSecret()
	if err != nil {
		return NotificationSetting{}, err
	}
	secretID, err := s.seal(ctx, id, notificationSecretIDPrefix, secret)
	if err != nil {
		return NotificationSetting{}, err
	}
	m, _, err = s.update(ctx, id, actor, func(m domain.Merchant) ([]domain.Event, error) {
		return m.DecideRotateNotificationSecret(secretID, hint, grace, s.cfg.Now())
	})
	if err != nil {
		return NotificationSetting{}, err
	}
	s.logger.InfoContext(ctx, "merchant notification secret rotated", "merchantId", id, "secret", hint,
		"previousUntil", m.Notification.PreviousValidUntil, "actor", actor)
	out := s.notificationSetting(m)
	out.SigningSecret = secret
	return out, nil
}

// RemoveNotificationURL stops the merchant's notifications. Removing none is no error.
func (s *Service) RemoveNotificationURL(ctx context.Context, id domain.MerchantID, actor string) (NotificationSetting, error) {
	m, events, err := s.update(ctx, id, actor, func(m domain.Merchant) ([]domain.Event, error) {
		return m.DecideRemoveNotificationEndpoint(s.cfg.Now())
	})
	if err != nil {
		return NotificationSetting{}, err
	}
	if len(events) > 0 {
		s.logger.InfoContext(ctx, "merchant notification URL removed", "merchantId", id, "actor", actor)
	}
	return s.notificationSetting(m), nil
}

func (s *Service) notificationSetting(m domain.Merchant) NotificationSetting {
	n := m.Notification
	out := NotificationSetting{MerchantID: m.ID, URL: n.URL, SecretHint: n.SecretHint}
	if n.PreviousSecretID != "" && s.cfg.Now().Before(n.PreviousValidUntil) {
		until := n.PreviousValidUntil.In(domain.KST)
		out.PreviousSecretValidUntil = &until
	}
	return out
}

// NotificationTarget is a merchant's endpoint as the dispatcher needs it.
type NotificationTarget struct {
	MerchantID domain.MerchantID
	Endpoint   domain.NotificationEndpoint
}

// NotificationTargets lists the merchants with a notification URL, each as of at most CacheTTL
// ago. The candidates are the merchants that ever had a signing secret stored (a small table);
// whether one has an endpoint now is decided from its stream. A merchant whose state cannot be
// read is left out and logged, so that one broken history does not stop everyone's deliveries.
func (s *Service) NotificationTargets(ctx context.Context) ([]NotificationTarget, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT DISTINCT merchant_id FROM merchant_secrets WHERE credential_id LIKE $1 ORDER BY merchant_id`,
		notificationSecretIDPrefix+"%")
	if err != nil {
		return nil, fmt.Errorf("merchants: notification targets: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[domain.MerchantID])
	if err != nil {
		return nil, fmt.Errorf("merchants: notification targets: %w", err)
	}
	var out []NotificationTarget
	for _, id := range ids {
		m, err := s.state(ctx, id)
		if errors.Is(err, domain.ErrMerchantNotFound) {
			continue // a secret stored for a merchant whose event never got appended
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			s.logger.ErrorContext(ctx, "merchant left out of notifications: its state cannot be read", "merchantId", id, "error", err)
			continue
		}
		if m.Notification.Set() {
			out = append(out, NotificationTarget{MerchantID: id, Endpoint: m.Notification})
		}
	}
	return out, nil
}

// NotificationSecret opens the merchant's signing secret stored under secretID.
func (s *Service) NotificationSecret(ctx context.Context, id domain.MerchantID, secretID string) ([]byte, error) {
	plain, err := s.openSecret(ctx, id, secretID)
	if err != nil {
		return nil, err
	}
	return []byte(plain), nil
}
