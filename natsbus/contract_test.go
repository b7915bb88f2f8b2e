package natsbus_test

import (
	"bufio"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/natsbus"
)

// contract is docs/events.md as the test reads it: the envelope's fields, each published
// type's fields, and the types listed as not published.
type contract struct {
	envelope    []string
	published   map[string][]string
	unpublished []string
}

// readContract parses the markdown: field tables are rows starting with "| `name` |".
func readContract(t *testing.T) contract {
	t.Helper()
	f, err := os.Open("../docs/events.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c := contract{published: map[string][]string{}}
	var section, current string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "## "):
			section, current = strings.TrimPrefix(line, "## "), ""
		case strings.HasPrefix(line, "### ") && section == "Published events":
			current = strings.TrimPrefix(line, "### ")
			if _, dup := c.published[current]; dup {
				t.Errorf("docs/events.md documents %s twice", current)
			}
			c.published[current] = nil
		case strings.HasPrefix(line, "| `"):
			name, _, _ := strings.Cut(strings.TrimPrefix(line, "| `"), "`")
			switch {
			case section == "Envelope":
				c.envelope = append(c.envelope, name)
			case current != "":
				c.published[current] = append(c.published[current], name)
			}
		case strings.HasPrefix(line, "- ") && section == "Not published":
			c.unpublished = append(c.unpublished, strings.TrimPrefix(line, "- "))
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return c
}

// jsonFields lists the JSON names of a struct's fields, embedded structs' fields inlined.
func jsonFields(typ reflect.Type) []string {
	var out []string
	for f := range typ.Fields() {
		if f.Anonymous && f.Type.Kind() == reflect.Struct {
			out = append(out, jsonFields(f.Type)...)
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name != "" && name != "-" {
			out = append(out, name)
		}
	}
	return out
}

var merchantHeader = reflect.TypeFor[domain.MerchantHeader]()

// TestEveryEventTypeIsDocumented holds docs/events.md to the code: every event type the domain
// emits is documented, a payment event with exactly its fields in order, a merchant event as
// not published; the envelope table matches natsbus.Event.
func TestEveryEventTypeIsDocumented(t *testing.T) {
	c := readContract(t)
	if want := jsonFields(reflect.TypeFor[natsbus.Event]()); !slices.Equal(c.envelope, want) {
		t.Errorf("docs/events.md envelope fields %v, natsbus.Event has %v", c.envelope, want)
	}
	seen := map[string]bool{}
	for _, typ := range domain.EventTypes() {
		e, err := domain.UnmarshalEvent(string(typ), domain.SchemaVersion, []byte("{}"))
		if err != nil {
			t.Fatal(err)
		}
		rt := reflect.TypeOf(e)
		_, merchant := rt.FieldByName(merchantHeader.Name())
		name := string(typ)
		seen[name] = true
		if merchant {
			if !slices.Contains(c.unpublished, name) {
				t.Errorf("%s is a merchant event: list it under \"Not published\" in docs/events.md", name)
			}
			continue
		}
		doc, ok := c.published[name]
		if !ok {
			t.Errorf("%s is published but not documented in docs/events.md (### %s under \"Published events\")", name, name)
			continue
		}
		if want := jsonFields(rt); !slices.Equal(doc, want) {
			t.Errorf("docs/events.md %s fields %v, the code has %v", name, doc, want)
		}
	}
	for name := range c.published {
		if !seen[name] {
			t.Errorf("docs/events.md documents %s, which the domain does not emit", name)
		}
	}
	for _, name := range c.unpublished {
		if !seen[name] {
			t.Errorf("docs/events.md lists %s as not published, which the domain does not emit", name)
		}
	}
}
