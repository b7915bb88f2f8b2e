package config

import (
	"errors"
	"log/slog"
	"net/url"
	"strings"
	"time"
)

// DefaultDatabaseURL is the local database `make run` prepares; DATABASE_URL's default.
const DefaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/paymentledger?sslmode=disable"

// Shared is the environment paymentd and paymentctl both read; each embeds it in its own
// settings struct, so one name means one thing in both.
type Shared struct {
	DatabaseURL        string        `env:"DATABASE_URL,default=postgres://postgres@127.0.0.1:5432/paymentledger?sslmode=disable" desc:"PostgreSQL URL (postgres://); paymentd applies pending migrations at start-up"`
	DatabaseWait       time.Duration `env:"DATABASE_WAIT,default=30s" desc:"how long paymentd waits at start-up for the database to answer; 0 tries once"`
	TossBaseURL        string        `env:"TOSS_BASE_URL,default=https://api.tosspayments.com" desc:"Toss Payments API base URL"`
	TossSimulator      bool          `env:"TOSS_SIMULATOR,default=false" desc:"serve the Toss simulator in-process at /tosssim and send every merchant's Toss calls to it; make run turns it on"`
	DataDir            string        `env:"DATA_DIR,default=./data" desc:"directory for local state: the webhook spool, the simulator's generated SECRETS_KEY, make run's throwaway PostgreSQL cluster"`
	SecretsKey         Key           `env:"SECRETS_KEY" secret:"true" desc:"key-encryption key for merchants' Toss secret keys: base64 of 32 random bytes (openssl rand -base64 32); may be empty only with TOSS_SIMULATOR, which then generates one under DATA_DIR"`
	SecretsKeyPrevious Keys          `env:"SECRETS_KEY_PREVIOUS" secret:"true" desc:"comma-separated earlier SECRETS_KEY values, still accepted for decryption during a rotation"`
	NATSURL            string        `env:"NATS_URL" secret:"true" desc:"NATS server or cluster with JetStream (nats://host:4222, comma-separated for several); empty: paymentd runs nats-server in-process with its data under DATA_DIR/nats and writes its address to DATA_DIR/nats.url, where paymentctl finds it"`
	LogLevel           slog.Level    `env:"LOG_LEVEL,default=info" desc:"debug, info, warn or error; paymentd logs JSON on stdout"`
}

// Validate checks the shared settings' rules; the embedding struct's Validate includes it.
// SECRETS_KEY's format is checked while parsing; whether it may be empty is paymentd's rule.
func (s Shared) Validate() error {
	var errs []error
	if u, err := url.Parse(s.DatabaseURL); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		errs = append(errs, Invalid("DATABASE_URL", "%q must be a postgres:// URL", redactURL(s.DatabaseURL)))
	}
	if s.DatabaseWait < 0 {
		errs = append(errs, Invalid("DATABASE_WAIT", "must not be negative, not %s", s.DatabaseWait))
	}
	if err := HTTPURL("TOSS_BASE_URL", s.TossBaseURL); err != nil {
		errs = append(errs, err)
	}
	if s.NATSURL != "" {
		for _, part := range strings.Split(s.NATSURL, ",") {
			u, err := url.Parse(strings.TrimSpace(part))
			if err != nil || (u.Scheme != "nats" && u.Scheme != "tls" && u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
				errs = append(errs, Invalid("NATS_URL", "each comma-separated address must be a nats://, tls://, ws:// or wss:// URL with a host"))
				break
			}
		}
	}
	return errors.Join(errs...)
}

// HTTPURL checks that value is an absolute http(s) URL.
func HTTPURL(name, value string) error {
	if u, err := url.Parse(value); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return Invalid(name, "%q must be an absolute http(s) URL", value)
	}
	return nil
}

// Positive checks a duration that must be more than zero.
func Positive(name string, d time.Duration) error {
	if d <= 0 {
		return Invalid(name, "must be a positive duration such as 30s, not %s", d)
	}
	return nil
}

// AtLeast checks a count with a lower bound.
func AtLeast(name string, n, least int) error {
	if n < least {
		return Invalid(name, "must be at least %d, not %d", least, n)
	}
	return nil
}
