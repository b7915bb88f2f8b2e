package domain_test

import (
	"go/build"
	"strings"
	"testing"
)

// TestImportsArePure keeps the domain free of I/O: it may import the standard library's pure
// packages and decimal, nothing else.
func TestImportsArePure(t *testing.T) {
	pkg, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	allowed := map[string]bool{
		"encoding/json": true, "errors": true, "fmt": true, "regexp": true, "strings": true,
		"time": true, "unicode/utf8": true, "strconv": true, "sort": true, "slices": true, "maps": true,
		"github.com/shopspring/decimal": true,
	}
	for _, imp := range pkg.Imports {
		if !allowed[imp] {
			t.Errorf("domain imports %q; the domain must stay free of I/O (allowed: stdlib pure packages and decimal)", imp)
		}
		if strings.Contains(imp, "net") || strings.Contains(imp, "pgx") || strings.Contains(imp, "slog") {
			t.Errorf("domain imports %q", imp)
		}
	}
}
