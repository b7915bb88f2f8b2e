// Package config owns how paymentd and paymentctl read their settings: from the environment
// only, each setting declared once as a struct field whose tags give its variable, default,
// description and whether it is a secret. From that one declaration come strict parsing (a
// malformed value is an error naming the variable, never a silent default), the environment
// section of every command's help, and the start-up log with secrets masked.
//
// A settings struct looks like this:
//
//	type Config struct {
//		config.Shared // embedded structs contribute their settings
//		HTTPAddr    string        `env:"HTTP_ADDR,default=:8080" desc:"listen address"`
//		CheckoutTTL time.Duration `env:"CHECKOUT_TTL,default=40m" desc:"how long a checkout waits"`
//		AdminToken  string        `env:"ADMIN_TOKEN" secret:"true" desc:"admin API bearer token"`
//	}
//
//	func (c Config) Validate() error { ... } // rules on parsed values, see [Invalid]
//
// Parsing is github.com/sethvargo/go-envconfig's: the env tag is its syntax, and any type it
// decodes (strings, bools, numbers, time.Duration, encoding.TextUnmarshaler, its Decoder
// interfaces) can be a setting. An empty variable counts as unset, as it always has here, so it
// takes the default.
package config

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sethvargo/go-envconfig"
)

// Validator is a settings struct: fields tagged for envconfig plus the rules that parsing alone
// cannot check (ranges, formats, one setting depending on another).
type Validator interface {
	// Validate reports every broken rule at once (errors.Join), each as an error from
	// [Invalid] so that it names its variable.
	Validate() error
}

// Load fills target, a pointer to a settings struct, from getenv (os.Getenv in main, a map in
// tests) and then calls its Validate. Every value that does not parse and every rule Validate
// reports comes back in one *[Error], each problem naming its variable; a value that did not
// parse is not reported again by Validate (Validate sees the default in its place). On error
// target's contents are unspecified. Errors that are not an *Error are mistakes in the struct's
// declaration (a field without desc, an unknown tag option) and would fail any test that loads
// it.
func Load(ctx context.Context, getenv func(string) string, target Validator) error {
	rv := reflect.ValueOf(target)
	if rv.Kind() != reflect.Pointer || rv.IsNil() || rv.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("config: Load needs a pointer to a struct, not %T", target)
	}
	settings, err := Settings(target)
	if err != nil {
		return err
	}

	// envconfig stops at the first value that does not parse. To report them all, each failed
	// variable is recorded and hidden from the next pass (so it takes its default), until a pass
	// succeeds: at most one pass per bad variable, plus one.
	failed := map[string]bool{}
	lookup := envconfig.LookuperFunc(func(name string) (string, bool) {
		if failed[name] {
			return "", false
		}
		v := getenv(name)
		return v, v != ""
	})
	var problems []error
	for {
		rv.Elem().SetZero()
		err := envconfig.ProcessWith(ctx, &envconfig.Config{Target: target, Lookuper: lookup})
		if err == nil {
			break
		}
		s, ok := failedSetting(settings, err)
		if !ok || failed[s.Name] {
			return fmt.Errorf("config: %w", err)
		}
		failed[s.Name] = true
		problems = append(problems, &SettingError{Name: s.Name, Err: decodeProblem(s, getenv(s.Name), err)})
	}

	declared := map[string]int{}
	for i, s := range settings {
		declared[s.Name] = i
	}
	for _, p := range flatten(target.Validate()) {
		var se *SettingError
		if errors.As(p, &se) {
			if failed[se.Name] {
				continue
			}
			if _, ok := declared[se.Name]; !ok {
				return fmt.Errorf("config: %T.Validate names %s, which it does not declare: %w", target, se.Name, p)
			}
		}
		problems = append(problems, p)
	}
	if len(problems) == 0 {
		return nil
	}
	// Declaration order, the order of the help text, whichever step found the problem.
	order := func(err error) int {
		var se *SettingError
		if errors.As(err, &se) {
			return declared[se.Name]
		}
		return len(settings)
	}
	slices.SortStableFunc(problems, func(a, b error) int { return order(a) - order(b) })
	return &Error{Problems: problems}
}

// SettingError is a problem with one setting, named by its environment variable.
type SettingError struct {
	Name string // the environment variable
	Err  error
}

func (e *SettingError) Error() string { return e.Name + ": " + e.Err.Error() }
func (e *SettingError) Unwrap() error { return e.Err }

// Invalid returns the *[SettingError] for a broken rule; Validate methods build their errors
// with it so that each names its variable.
func Invalid(name, format string, args ...any) error {
	return &SettingError{Name: name, Err: fmt.Errorf(format, args...)}
}

// Error is every configuration problem Load found, in declaration order.
type Error struct {
	Problems []error // mostly *SettingError
}

func (e *Error) Error() string {
	if len(e.Problems) == 1 {
		return e.Problems[0].Error()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d configuration problems:", len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  ")
		b.WriteString(p.Error())
	}
	return b.String()
}

func (e *Error) Unwrap() []error { return e.Problems }

// flatten splits what Validate returned into single problems: an *Error or an errors.Join
// result (recognised by its documented format: the parts' messages joined by newlines).
func flatten(err error) []error {
	if err == nil {
		return nil
	}
	multi, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return []error{err}
	}
	parts := multi.Unwrap()
	msgs := make([]string, len(parts))
	for i, p := range parts {
		msgs[i] = p.Error()
	}
	if _, isError := err.(*Error); !isError && err.Error() != strings.Join(msgs, "\n") {
		return []error{err}
	}
	var out []error
	for _, p := range parts {
		out = append(out, flatten(p)...)
	}
	return out
}

// failedSetting finds the setting an envconfig error is about. envconfig prefixes a field's
// error with the Go field names from the root struct ("Shared: DatabaseWait: ..."); the longest
// matching path wins.
func failedSetting(settings []Setting, err error) (Setting, bool) {
	msg := err.Error()
	var best Setting
	found := false
	for _, s := range settings {
		prefix := strings.Join(s.path, ": ") + ": "
		if strings.HasPrefix(msg, prefix) && (!found || len(s.path) > len(best.path)) {
			best, found = s, true
		}
	}
	return best, found
}

var (
	durationType = reflect.TypeFor[time.Duration]()
	levelType    = reflect.TypeFor[slog.Level]()
)

// decodeProblem says what is wrong with value in words an operator can act on, rather than
// strconv's "parsing "flase": invalid syntax". A secret's value is never repeated.
func decodeProblem(s Setting, value string, err error) error {
	var ve *ValueError
	if errors.As(err, &ve) {
		return ve
	}
	if value == "" {
		return fmt.Errorf("the declared default %q does not parse: %w", s.Default, err)
	}
	shown := strconv.Quote(value)
	if s.Secret {
		shown = "the value (not shown)"
	}
	if errors.Is(err, strconv.ErrRange) {
		return fmt.Errorf("%s is out of range", shown)
	}
	switch t := s.typ; {
	case t == durationType:
		return fmt.Errorf("%s is not a duration (such as 500ms, 30s, 5m or 1h30m)", shown)
	case t == levelType:
		return fmt.Errorf("%s is not a log level (debug, info, warn or error)", shown)
	case t.Kind() == reflect.Bool:
		return fmt.Errorf("%s is not a boolean (true or false)", shown)
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Int64:
		return fmt.Errorf("%s is not a whole number", shown)
	case t.Kind() >= reflect.Uint && t.Kind() <= reflect.Uintptr:
		return fmt.Errorf("%s is not a whole number of zero or more", shown)
	case t.Kind() == reflect.Float32 || t.Kind() == reflect.Float64:
		return fmt.Errorf("%s is not a number", shown)
	case s.Secret:
		return fmt.Errorf("%s is not valid", shown)
	}
	return fmt.Errorf("%s is not valid: %w", shown, err)
}

// ValueError is what a setting type's decoder returns: a message about the value that is safe
// to print (a secret's decoder does not repeat the value).
type ValueError struct{ msg string }

func (e *ValueError) Error() string { return e.msg }

func valueErrorf(format string, args ...any) error {
	return &ValueError{msg: fmt.Sprintf(format, args...)}
}
