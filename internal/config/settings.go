package config

import (
	"fmt"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strings"
)

// Setting is one environment variable as a settings struct declares it.
type Setting struct {
	Name    string // the environment variable
	Default string // as written in the env tag; empty when there is none
	Desc    string // the desc tag
	Secret  bool   // secret:"true": masked in the start-up log, never repeated in errors

	path  []string // Go field names from the root struct, as envconfig names them in errors
	index []int    // for reflect.Value.FieldByIndex
	typ   reflect.Type
}

// Settings lists the settings v (a settings struct or a pointer to one) declares, in
// declaration order, embedded structs in place. It fails on a declaration that help or the log
// could not show: a setting without desc, a variable declared twice.
func Settings(v any) ([]Setting, error) {
	t := reflect.TypeOf(v)
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct {
		return nil, fmt.Errorf("config: settings must be a struct, not %T", v)
	}
	var out []Setting
	seen := map[string]bool{}
	var walk func(t reflect.Type, path []string, index []int) error
	walk = func(t reflect.Type, path []string, index []int) error {
		for i := range t.NumField() {
			f := t.Field(i)
			fpath := append(slices.Clone(path), f.Name)
			findex := append(slices.Clone(index), i)
			tag, tagged := f.Tag.Lookup("env")
			if !tagged {
				// envconfig descends into untagged struct fields; so does the list.
				if f.Type.Kind() == reflect.Struct && f.IsExported() {
					if err := walk(f.Type, fpath, findex); err != nil {
						return err
					}
				}
				continue
			}
			name, def := parseEnvTag(tag)
			where := strings.Join(fpath, ".")
			switch {
			case name == "":
				return fmt.Errorf("config: %s: env tag %q names no variable", where, tag)
			case seen[name]:
				return fmt.Errorf("config: %s: %s is declared twice", where, name)
			case f.Tag.Get("desc") == "":
				return fmt.Errorf("config: %s: %s has no desc tag for the help text", where, name)
			}
			seen[name] = true
			out = append(out, Setting{
				Name: name, Default: def, Desc: f.Tag.Get("desc"), Secret: f.Tag.Get("secret") == "true",
				path: fpath, index: findex, typ: f.Type,
			})
		}
		return nil
	}
	if err := walk(t, nil, nil); err != nil {
		return nil, err
	}
	return out, nil
}

// parseEnvTag reads the variable and the default from an env tag the way envconfig does: the
// name before the first comma, and a default= option that takes the rest of the tag verbatim.
func parseEnvTag(tag string) (name, def string) {
	name, opts, _ := strings.Cut(tag, ",")
	for opts != "" {
		var opt string
		opt, opts, _ = strings.Cut(opts, ",")
		if trimmed := strings.TrimLeft(opt, " "); strings.HasPrefix(trimmed, "default=") {
			def = strings.TrimPrefix(trimmed, "default=")
			if opts != "" {
				def += "," + opts
			}
			break
		}
	}
	return strings.TrimSpace(name), def
}

// Help is the environment section of a command's help: one entry per setting v declares, the
// variable, then its description and default wrapped beside it.
func Help(v any) (string, error) {
	settings, err := Settings(v)
	if err != nil {
		return "", err
	}
	width := 0
	for _, s := range settings {
		width = max(width, len(s.Name))
	}
	const lineWidth = 100
	indent := strings.Repeat(" ", 2+width+2)
	var b strings.Builder
	for _, s := range settings {
		text := s.Desc
		if s.Default != "" {
			text += " (default " + s.Default + ")"
		}
		if s.Secret {
			text += " [secret]"
		}
		fmt.Fprintf(&b, "  %-*s  ", width, s.Name)
		col := len(indent)
		for i, word := range strings.Fields(text) {
			if i > 0 && col+1+len(word) > lineWidth {
				b.WriteString("\n" + indent)
				col = len(indent)
			} else if i > 0 {
				b.WriteByte(' ')
				col++
			}
			b.WriteString(word)
			col += len(word)
		}
		b.WriteByte('\n')
	}
	return b.String(), nil
}

// Redact is the start-up log's view of loaded settings, keyed by variable: secrets masked,
// passwords in URLs hidden, durations and other Stringers as text.
func Redact(v any) map[string]any {
	settings, err := Settings(v)
	if err != nil {
		return map[string]any{"error": err.Error()}
	}
	rv := reflect.ValueOf(v)
	for rv.Kind() == reflect.Pointer {
		rv = rv.Elem()
	}
	out := make(map[string]any, len(settings))
	for _, s := range settings {
		f := rv.FieldByIndex(s.index)
		switch {
		case s.Secret:
			out[s.Name] = maskValue(f)
		case f.Kind() == reflect.String:
			out[s.Name] = redactURL(f.String())
		case f.Kind() == reflect.Slice && f.Type().Elem().Implements(stringerType):
			items := make([]string, f.Len())
			for i := range items {
				items[i] = f.Index(i).Interface().(fmt.Stringer).String()
			}
			out[s.Name] = items
		case f.Type().Implements(stringerType):
			out[s.Name] = f.Interface().(fmt.Stringer).String()
		default:
			out[s.Name] = f.Interface()
		}
	}
	return out
}

var stringerType = reflect.TypeFor[fmt.Stringer]()

// tossKeyPrefix is the type prefix of a Toss key (test_sk_, live_gsk_, test_ck_): it tells
// which environment and kind of key is configured and is not itself secret.
var tossKeyPrefix = regexp.MustCompile(`^[a-z]+_[a-z]+_`)

// mask keeps a key's type prefix and hides the rest; a secret without one (a random token, a
// base64 key) is hidden whole.
func mask(s string) string {
	if s == "" {
		return ""
	}
	return tossKeyPrefix.FindString(s) + "****"
}

func maskValue(f reflect.Value) any {
	switch {
	case f.IsZero():
		return ""
	case f.Kind() == reflect.String:
		return mask(f.String())
	case f.Kind() == reflect.Slice && f.Type().Elem().Kind() != reflect.Uint8:
		return strings.TrimSuffix(strings.Repeat("****,", f.Len()), ",")
	}
	return "****"
}

// redactURL hides a URL's password, in the user info or in a query parameter (libpq and pgx
// accept ?password=); text that is not a URL is returned as it is.
func redactURL(s string) string {
	if !strings.Contains(s, "://") {
		return s
	}
	u, err := url.Parse(s)
	if err != nil {
		return "(unparseable URL)"
	}
	q := u.Query()
	changed := false
	for k := range q {
		if strings.Contains(strings.ToLower(k), "password") {
			q.Set(k, "xxxxx")
			changed = true
		}
	}
	if changed {
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}
