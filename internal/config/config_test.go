package config_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/paymentledger/ledger/internal/config"
	"github.com/paymentledger/ledger/psp/toss"
)

var ctx = context.Background()

func envFrom(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// sample is a settings struct with one setting of each kind Load must parse strictly.
type sample struct {
	config.Shared
	Enabled bool            `env:"SAMPLE_ENABLED,default=true" desc:"a boolean"`
	Every   time.Duration   `env:"SAMPLE_EVERY,default=30s" desc:"a duration"`
	Workers int             `env:"SAMPLE_WORKERS,default=4" desc:"a count"`
	Rate    float64         `env:"SAMPLE_RATE,default=2.5" desc:"a rate"`
	Size    uint8           `env:"SAMPLE_SIZE,default=8" desc:"a small count"`
	Token   string          `env:"SAMPLE_TOKEN" secret:"true" desc:"a secret"`
	PIN     int             `env:"SAMPLE_PIN" secret:"true" desc:"a secret number"`
	List    string          `env:"SAMPLE_LIST,default=a,b,c" desc:"a default with commas"`
	Allowed config.Prefixes `env:"SAMPLE_ALLOWED" desc:"addresses"`
}

func (s sample) Validate() error {
	return errors.Join(s.Shared.Validate(), config.AtLeast("SAMPLE_WORKERS", s.Workers, 1), config.Positive("SAMPLE_EVERY", s.Every))
}

func TestLoadDefaults(t *testing.T) {
	var s sample
	if err := config.Load(ctx, envFrom(nil), &s); err != nil {
		t.Fatal(err)
	}
	want := sample{
		Shared: config.Shared{
			DatabaseURL: config.DefaultDatabaseURL, DatabaseWait: 30 * time.Second, TossBaseURL: toss.DefaultBaseURL,
			DataDir: "./data", LogLevel: slog.LevelInfo,
		},
		Enabled: true, Every: 30 * time.Second, Workers: 4, Rate: 2.5, Size: 8, List: "a,b,c",
	}
	if fmt.Sprintf("%+v", s) != fmt.Sprintf("%+v", want) {
		t.Fatalf("defaults\n%+v\nwant\n%+v", s, want)
	}
}

func TestLoadSetValuesWin(t *testing.T) {
	key := make([]byte, 32)
	key[0] = 7
	var s sample
	err := config.Load(ctx, envFrom(map[string]string{
		"SAMPLE_ENABLED": "false", "SAMPLE_EVERY": "1m30s", "SAMPLE_WORKERS": "9", "SAMPLE_RATE": "0.5",
		"LOG_LEVEL": "debug", "SECRETS_KEY": base64.StdEncoding.EncodeToString(key), "TOSS_SIMULATOR": "true",
		"SAMPLE_ALLOWED": "10.0.0.0/8, 192.0.2.7,2001:db8::/32",
	}), &s)
	if err != nil {
		t.Fatal(err)
	}
	if s.Enabled || s.Every != 90*time.Second || s.Workers != 9 || s.Rate != 0.5 || s.LogLevel != slog.LevelDebug ||
		!s.TossSimulator || len(s.SecretsKey) != 32 || s.SecretsKey[0] != 7 || len(s.Allowed) != 3 {
		t.Fatalf("loaded %+v", s)
	}
	if s.Allowed[1] != netip.MustParsePrefix("192.0.2.7/32") {
		t.Fatalf("a bare address must stand for itself alone: %v", s.Allowed[1])
	}
}

// TestLoadNamesEveryBadVariable is the defect report: RECOVERY_ENABLED=flase took the default
// silently. Every malformed value is an error naming its variable, all of them at once.
func TestLoadNamesEveryBadVariable(t *testing.T) {
	for _, c := range []struct {
		name, value, want string
	}{
		{"SAMPLE_ENABLED", "flase", `SAMPLE_ENABLED: "flase" is not a boolean (true or false)`},
		{"SAMPLE_ENABLED", "yes", `SAMPLE_ENABLED: "yes" is not a boolean (true or false)`},
		{"SAMPLE_EVERY", "30", `SAMPLE_EVERY: "30" is not a duration (such as 500ms, 30s, 5m or 1h30m)`},
		{"SAMPLE_WORKERS", "four", `SAMPLE_WORKERS: "four" is not a whole number`},
		{"SAMPLE_WORKERS", "4.0", `SAMPLE_WORKERS: "4.0" is not a whole number`},
		{"SAMPLE_SIZE", "300", `SAMPLE_SIZE: "300" is out of range`},
		{"SAMPLE_SIZE", "-1", `SAMPLE_SIZE: "-1" is not a whole number of zero or more`},
		{"SAMPLE_RATE", "fast", `SAMPLE_RATE: "fast" is not a number`},
		{"LOG_LEVEL", "verbose", `LOG_LEVEL: "verbose" is not a log level (debug, info, warn or error)`},
		{"DATABASE_WAIT", "soon", `DATABASE_WAIT: "soon" is not a duration (such as 500ms, 30s, 5m or 1h30m)`},
		{"DATABASE_WAIT", "-1s", `DATABASE_WAIT: must not be negative, not -1s`},
		{"SAMPLE_EVERY", "0s", `SAMPLE_EVERY: must be a positive duration such as 30s, not 0s`},
		{"SAMPLE_WORKERS", "0", `SAMPLE_WORKERS: must be at least 1, not 0`},
		{"DATABASE_URL", "mysql://u:hunter2@h/db", `DATABASE_URL: "mysql://u:xxxxx@h/db" must be a postgres:// URL`},
		{"TOSS_BASE_URL", "api.tosspayments.com", `TOSS_BASE_URL: "api.tosspayments.com" must be an absolute http(s) URL`},
		{"NATS_URL", "nats://a:4222,http://b", `NATS_URL: each comma-separated address must be a nats://, tls://, ws:// or wss:// URL with a host`},
		{"SAMPLE_ALLOWED", "10.0.0.1/8", `SAMPLE_ALLOWED: "10.0.0.1/8" has host bits set: write 10.0.0.0/8 for the block or 10.0.0.1 for the address`},
		{"SAMPLE_ALLOWED", "10.0.0.0/8,localhost", `SAMPLE_ALLOWED: "localhost" is not an IP address or a CIDR block`},
		{"SECRETS_KEY", "c2hvcnQ=", `SECRETS_KEY: the value (not shown) decodes to 5 bytes, not 32`},
		{"SECRETS_KEY_PREVIOUS", base64.StdEncoding.EncodeToString(make([]byte, 32)) + ",***", `SECRETS_KEY_PREVIOUS: entry 2: the value (not shown) is not standard base64`},
	} {
		var s sample
		err := config.Load(ctx, envFrom(map[string]string{c.name: c.value}), &s)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s=%s: error %v, want %q", c.name, c.value, err, c.want)
		}
		var se *config.SettingError
		if !errors.As(err, &se) || se.Name != c.name {
			t.Errorf("%s=%s: no *SettingError naming it in %v", c.name, c.value, err)
		}
	}

	var s sample
	err := config.Load(ctx, envFrom(map[string]string{
		"SAMPLE_WORKERS": "0", "SAMPLE_ENABLED": "flase", "DATABASE_WAIT": "soon", "SAMPLE_EVERY": "forever",
	}), &s)
	want := `4 configuration problems:
  DATABASE_WAIT: "soon" is not a duration (such as 500ms, 30s, 5m or 1h30m)
  SAMPLE_ENABLED: "flase" is not a boolean (true or false)
  SAMPLE_EVERY: "forever" is not a duration (such as 500ms, 30s, 5m or 1h30m)
  SAMPLE_WORKERS: must be at least 1, not 0`
	if err == nil || err.Error() != want {
		t.Fatalf("all problems at once, in declaration order, each once:\n%v\nwant\n%s", err, want)
	}
}

func TestSecretValuesStayOutOfErrors(t *testing.T) {
	for name, value := range map[string]string{
		"SAMPLE_PIN": "hunter2secret", "SECRETS_KEY": "hunter2secret", "SECRETS_KEY_PREVIOUS": "hunter2secret",
	} {
		var s sample
		err := config.Load(ctx, envFrom(map[string]string{name: value}), &s)
		if err == nil || !strings.HasPrefix(err.Error(), name+": ") || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s: error %v must name the variable and not show the value", name, err)
		}
	}
}

type undocumented struct {
	A string `env:"A" desc:"documented"`
	B string `env:"B"`
}

func (undocumented) Validate() error { return nil }

type twice struct {
	config.Shared
	Again string `env:"DATABASE_URL" desc:"again"`
}

func (twice) Validate() error { return nil }

type misnamed struct {
	A int `env:"A,default=1" desc:"a"`
}

func (misnamed) Validate() error { return config.Invalid("B", "is wrong") }

// TestDeclarationMistakes: what would make help or errors wrong fails every load, so the first
// test that loads the struct catches it.
func TestDeclarationMistakes(t *testing.T) {
	for _, c := range []struct {
		target config.Validator
		want   string
	}{
		{&undocumented{}, "B has no desc tag"},
		{&twice{}, "DATABASE_URL is declared twice"},
		{&misnamed{}, "Validate names B, which it does not declare"},
		{sample{}, "pointer to a struct"},
	} {
		err := config.Load(ctx, envFrom(nil), c.target)
		var ce *config.Error
		if err == nil || !strings.Contains(err.Error(), c.want) || errors.As(err, &ce) {
			t.Errorf("%T: error %v, want a declaration error with %q", c.target, err, c.want)
		}
	}
}

func TestHelpListsEverySettingWithDefaultAndDescription(t *testing.T) {
	help, err := config.Help(sample{})
	if err != nil {
		t.Fatal(err)
	}
	settings, err := config.Settings(&sample{})
	if err != nil {
		t.Fatal(err)
	}
	if len(settings) != 18 {
		t.Fatalf("%d settings, want the 9 shared and the 9 of sample", len(settings))
	}
	for _, s := range settings {
		if !strings.Contains(help, "\n  "+s.Name+" ") && !strings.HasPrefix(help, "  "+s.Name+" ") {
			t.Errorf("help has no line for %s:\n%s", s.Name, help)
		}
	}
	words := strings.Join(strings.Fields(help), " ") // wrapping aside
	for _, want := range []string{
		"SAMPLE_LIST a default with commas (default a,b,c)", "SAMPLE_EVERY a duration (default 30s)",
		"SAMPLE_TOKEN a secret [secret]", "(default " + config.DefaultDatabaseURL + ")",
	} {
		if !strings.Contains(words, want) {
			t.Errorf("help lacks %q:\n%s", want, help)
		}
	}
	for _, line := range strings.Split(help, "\n") {
		if len(line) > 100 && strings.Contains(strings.TrimSpace(line), " ") {
			t.Errorf("line over 100 columns: %q", line)
		}
	}
}

func TestRedact(t *testing.T) {
	var s sample
	key := base64.StdEncoding.EncodeToString(make([]byte, 32))
	err := config.Load(ctx, envFrom(map[string]string{
		"DATABASE_URL":         "postgres://app:hunter2@db:5432/ledger?sslmode=require&password=hunter3",
		"SAMPLE_TOKEN":         "test_sk_abcdefghijkl",
		"SAMPLE_PIN":           "1234",
		"SECRETS_KEY":          key,
		"SECRETS_KEY_PREVIOUS": key + "," + key,
		"SAMPLE_ALLOWED":       "10.0.0.0/8",
	}), &s)
	if err != nil {
		t.Fatal(err)
	}
	got := config.Redact(&s)
	for name, want := range map[string]any{
		"DATABASE_URL":         "postgres://app:xxxxx@db:5432/ledger?password=xxxxx&sslmode=require",
		"SAMPLE_TOKEN":         "test_sk_****",
		"SAMPLE_PIN":           "****",
		"SECRETS_KEY":          "****",
		"SECRETS_KEY_PREVIOUS": "****,****",
		"SAMPLE_EVERY":         "30s",
		"SAMPLE_WORKERS":       4,
		"LOG_LEVEL":            "INFO",
	} {
		if got[name] != want {
			t.Errorf("%s logged as %#v, want %#v", name, got[name], want)
		}
	}
	if fmt.Sprint(got["SAMPLE_ALLOWED"]) != "[10.0.0.0/8]" {
		t.Errorf("SAMPLE_ALLOWED logged as %v", got["SAMPLE_ALLOWED"])
	}
	if all := fmt.Sprint(got); strings.Contains(all, "hunter") || strings.Contains(all, "abcdefghijkl") || strings.Contains(all, key) {
		t.Fatalf("a secret in the start-up log: %s", all)
	}
	s.Token = "0123456789abcdef0123456789abcdef"
	if got := config.Redact(s)["SAMPLE_TOKEN"]; got != "****" {
		t.Fatalf("a token without a Toss key prefix must be hidden whole, got %v", got)
	}
}

// Prefixes are what the webhook inbox checks client addresses against, which it unmaps first:
// an IPv4-mapped block becomes its IPv4 block.
func TestPrefixesDecode(t *testing.T) {
	var p config.Prefixes
	if err := p.EnvDecode(ctx, " 203.0.113.7, 198.51.100.0/24 ,2001:db8::1, ::ffff:192.0.2.0/120, ::ffff:10.0.0.1"); err != nil {
		t.Fatal(err)
	}
	want := config.Prefixes{
		netip.MustParsePrefix("203.0.113.7/32"), netip.MustParsePrefix("198.51.100.0/24"),
		netip.MustParsePrefix("2001:db8::1/128"), netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("10.0.0.1/32"),
	}
	if !slices.Equal(p, want) {
		t.Fatalf("got %v, want %v", p, want)
	}
}
