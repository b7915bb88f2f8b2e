// Package openapi owns the OpenAPI 3.1 description of the HTTP API (openapi.yaml, embedded) and
// serves it at GET /openapi.yaml.
//
// The document is written by hand, from the handlers and the JSON tags of the structs they
// encode. Its tests keep it honest: every route httpapi registers must be documented and every
// documented operation registered (openapi_test.go), and the answers of end-to-end flows
// against a real server must match the schema of their operation and status
// (responses_test.go). A change to a route or an answer therefore fails a test until this
// document says the same.
package openapi

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"time"
)

//go:embed openapi.yaml
var document []byte

// etag is a strong validator of the document: it changes exactly when the document does.
var etag = func() string {
	sum := sha256.Sum256(document)
	return `"` + hex.EncodeToString(sum[:16]) + `"`
}()

// Document returns the OpenAPI document (YAML). The caller must not modify it.
func Document() []byte { return document }

// Handler serves the document as application/yaml to GET and HEAD, to anyone, whatever the
// path it is mounted at. It carries an ETag and answers If-None-Match with 304; clients may
// keep it for five minutes without asking.
func Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			w.WriteHeader(http.StatusMethodNotAllowed)
			_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{
				"code": "METHOD_NOT_ALLOWED", "message": r.Method + " is not allowed on /openapi.yaml; use GET"}})
			return
		}
		h := w.Header()
		h.Set("Content-Type", "application/yaml")
		h.Set("ETag", etag)
		h.Set("Cache-Control", "public, max-age=300")
		// ServeContent answers If-None-Match (304), HEAD and ranges from the ETag set above.
		http.ServeContent(w, r, "openapi.yaml", time.Time{}, bytes.NewReader(document))
	})
}
