package openapi_test

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/pb33f/libopenapi-validator/config"
	"github.com/pb33f/libopenapi-validator/schema_validation"
	v3 "github.com/pb33f/libopenapi/datamodel/high/v3"

	"github.com/paymentledger/ledger/httpapi"
	"github.com/paymentledger/ledger/internal/testenv"
	"github.com/paymentledger/ledger/openapi"
)

// mounts are the handlers paymentd mounts beside httpapi's routes (Server.Handle), which
// Server.Routes does not list: each mount prefix and the operations it serves.
var mounts = map[string][]operation{
	"/webhooks/toss": {{http.MethodPost, "/webhooks/toss/{merchantId}"}},
	"/openapi.yaml":  {{http.MethodGet, "/openapi.yaml"}},
}

type operation struct{ method, path string }

func (o operation) String() string { return o.method + " " + o.path }

var (
	loadOnce sync.Once
	loaded   *v3.Document
	loadErr  error
)

// model is the document's OpenAPI 3.1 model, built once per test binary.
func model(t *testing.T) *v3.Document {
	t.Helper()
	loadOnce.Do(func() {
		doc, err := libopenapi.NewDocument(openapi.Document())
		if err != nil {
			loadErr = err
			return
		}
		m, err := doc.BuildV3Model()
		if err != nil {
			loadErr = err
			return
		}
		loaded = &m.Model
	})
	if loadErr != nil {
		t.Fatalf("openapi.yaml: %v", loadErr)
	}
	return loaded
}

// newValidator validates answers against the document: formats (date-time, uuid…) asserted,
// and an undocumented status is an error.
func newValidator(t *testing.T) validator.Validator {
	t.Helper()
	return validator.NewValidatorFromV3Model(model(t), config.WithFormatAssertions())
}

// TestDocumentIsValidOpenAPI31 checks the document against the OpenAPI 3.1 schema (the
// validator's own copy of the specification's JSON Schema) and that every $ref resolves.
func TestDocumentIsValidOpenAPI31(t *testing.T) {
	doc, err := libopenapi.NewDocument(openapi.Document())
	if err != nil {
		t.Fatal(err)
	}
	if v := doc.GetVersion(); v != "3.1.0" {
		t.Fatalf("openapi: %q, want 3.1.0", v)
	}
	m, err := doc.BuildV3Model()
	if err != nil {
		t.Fatalf("build the model (unresolved $ref?): %v", err)
	}
	v, errs := validator.NewValidator(doc)
	if len(errs) > 0 {
		t.Fatalf("validator: %v", errs)
	}
	if ok, verrs := v.ValidateDocument(); !ok {
		for _, e := range verrs {
			t.Errorf("%s: %s", e.Message, e.Reason)
			for _, f := range e.SchemaValidationErrors {
				t.Errorf("  %s at %s (line %d)", f.Reason, f.FieldPath, f.Line)
			}
		}
	}
	// Every operation says who may call it: an empty security list (anyone) or schemes that
	// exist.
	schemes := m.Model.Components.SecuritySchemes
	for path, item := range m.Model.Paths.PathItems.FromOldest() {
		for method, op := range item.GetOperations().FromOldest() {
			if op.OperationId == "" {
				t.Errorf("%s %s: no operationId", method, path)
			}
			for _, req := range op.Security {
				for name := range req.Requirements.KeysFromOldest() {
					if schemes.GetOrZero(name) == nil {
						t.Errorf("%s %s: unknown security scheme %q", method, path, name)
					}
				}
			}
		}
	}
}

// documented lists the document's operations with their x-scope and x-pending-route.
func documented(t *testing.T) map[operation]*v3.Operation {
	t.Helper()
	ops := map[operation]*v3.Operation{}
	for path, item := range model(t).Paths.PathItems.FromOldest() {
		for method, op := range item.GetOperations().FromOldest() {
			ops[operation{strings.ToUpper(method), path}] = op
		}
	}
	return ops
}

func extension(op *v3.Operation, name string) string {
	if op.Extensions == nil {
		return ""
	}
	if n := op.Extensions.GetOrZero(name); n != nil {
		return n.Value
	}
	return ""
}

// registered lists what a real server serves: its routes (mux templates are OpenAPI path
// templates: /api/v1/payments/{orderId} in both) and the mounts.
func registered(t *testing.T, e *testenv.Env) map[operation]httpapi.Route {
	t.Helper()
	ops := map[operation]httpapi.Route{}
	for _, r := range e.Server.Routes() {
		ops[operation{r.Method, r.Path}] = r
	}
	for _, m := range mounts {
		for _, o := range m {
			ops[o] = httpapi.Route{Method: o.method, Path: o.path, Access: httpapi.AccessPublic}
		}
	}
	return ops
}

// TestRoutesMatchDocument fails when a registered route is missing from the document, when a
// documented operation is not registered (unless marked x-pending-route: a route being added),
// and when the document's security disagrees with who may call the route.
func TestRoutesMatchDocument(t *testing.T) {
	e := testenv.New(t, testenv.Options{})
	docOps := documented(t)
	routes := registered(t, e)

	for o, r := range routes {
		op, ok := docOps[o]
		if !ok {
			t.Errorf("%s is registered but not in openapi.yaml", o)
			continue
		}
		if extension(op, "x-pending-route") == "true" {
			t.Errorf("%s is registered now: remove its x-pending-route and check its answers in responses_test.go", o)
		}
		checkSecurity(t, o, op, r)
	}
	for o, op := range docOps {
		if _, ok := routes[o]; ok {
			continue
		}
		if extension(op, "x-pending-route") != "true" {
			t.Errorf("%s is in openapi.yaml but no route serves it", o)
		}
	}
}

// checkSecurity compares an operation's security with the route's access and scope.
func checkSecurity(t *testing.T, o operation, op *v3.Operation, r httpapi.Route) {
	t.Helper()
	var got []string
	for _, req := range op.Security {
		for name, scopes := range req.Requirements.FromOldest() {
			got = append(got, fmt.Sprintf("%s%v", name, scopes))
		}
	}
	slices.Sort(got)
	var want []string
	switch r.Access {
	case httpapi.AccessPublic:
		if op.Security == nil || len(op.Security) != 0 {
			// nil: inherits the document's (an API key); public routes must say security: [].
			t.Errorf("%s is public: its security must be []", o)
		}
		return
	case httpapi.AccessAPIKey:
		want = []string{fmt.Sprintf("apiKeyBasic[%s]", r.Scope), fmt.Sprintf("apiKeyBearer[%s]", r.Scope)}
		if s := extension(op, "x-scope"); s != string(r.Scope) {
			t.Errorf("%s: x-scope %q, the route needs %q", o, s, r.Scope)
		}
		if !strings.Contains(op.Description, "`"+string(r.Scope)+"`") {
			t.Errorf("%s: the description does not name the scope %s", o, r.Scope)
		}
	case httpapi.AccessAdmin:
		want = []string{"adminToken[]"}
	default:
		t.Errorf("%s: access %q unknown to this test", o, r.Access)
		return
	}
	if !slices.Equal(got, want) {
		t.Errorf("%s: security %v, want %v", o, got, want)
	}
}

// TestServesDocument fetches GET /openapi.yaml as a client would: the embedded document, as
// application/yaml, with an ETag that If-None-Match turns into a 304.
func TestServesDocument(t *testing.T) {
	e := testenv.New(t, testenv.Options{})
	resp, err := http.Get(e.API.URL + "/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/yaml" || string(body) != string(openapi.Document()) {
		t.Fatalf("GET /openapi.yaml: %d %q, %d bytes; want 200 application/yaml, the document", resp.StatusCode, resp.Header.Get("Content-Type"), len(body))
	}
	tag := resp.Header.Get("ETag")
	if tag == "" || resp.Header.Get("Cache-Control") == "" {
		t.Fatalf("no ETag or Cache-Control: %v", resp.Header)
	}
	req, _ := http.NewRequest(http.MethodGet, e.API.URL+"/openapi.yaml", nil)
	req.Header.Set("If-None-Match", tag)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotModified {
		t.Fatalf("If-None-Match: %d, want 304", resp.StatusCode)
	}
	status, _ := testenv.Do(t, "", http.MethodPost, e.API.URL+"/openapi.yaml", "{}")
	if status != http.StatusMethodNotAllowed {
		t.Fatalf("POST /openapi.yaml: %d, want 405", status)
	}
}

// TestValidatorCatchesDrift makes sure the checks of responses_test.go can fail: an answer
// with a field the document lacks, a time outside KST, a number for a decimal string, a wrong
// error code or an undocumented status is refused.
func TestValidatorCatchesDrift(t *testing.T) {
	v := newValidator(t)
	payment := `{"orderId":"order-123","merchantId":"m","buyerId":"b","orderName":"n","amount":"1000","currency":"KRW",
		"status":"SUCCESS","attempt":1,"needsReview":false,"canceledAmount":"0","cancelPending":false,
		"expiresAt":"2026-11-21T12:10:00+09:00","createdAt":"2026-11-21T12:00:00+09:00","updatedAt":"2026-11-21T12:00:01.5+09:00"}`
	valid := func(method, path string, status int, body string) bool {
		req, _ := http.NewRequest(method, "http://api.test"+path, nil)
		resp := &http.Response{StatusCode: status, Request: req, Body: io.NopCloser(strings.NewReader(body)),
			Header: http.Header{"Content-Type": {"application/json; charset=utf-8"}}}
		ok, _ := v.ValidateHttpResponse(req, resp)
		return ok
	}
	if !valid(http.MethodGet, "/api/v1/payments/order-123", 200, payment) {
		t.Fatal("a valid payment is refused")
	}
	for name, c := range map[string]struct {
		path   string
		status int
		body   string
	}{
		"an unknown field":       {"/api/v1/payments/order-123", 200, strings.Replace(payment, `"attempt":1`, `"attempt":1,"tip":"1"`, 1)},
		"a time in UTC":          {"/api/v1/payments/order-123", 200, strings.Replace(payment, "12:00:00+09:00", "03:00:00Z", 1)},
		"a number for a string":  {"/api/v1/payments/order-123", 200, strings.Replace(payment, `"amount":"1000"`, `"amount":1000`, 1)},
		"a fractional amount":    {"/api/v1/payments/order-123", 200, strings.Replace(payment, `"amount":"1000"`, `"amount":"1000.5"`, 1)},
		"a missing field":        {"/api/v1/payments/order-123", 200, strings.Replace(payment, `"attempt":1,`, ``, 1)},
		"an undocumented code":   {"/api/v1/payments/order-123", 404, `{"error":{"code":"NOT_THERE","message":"x"}}`},
		"an undocumented status": {"/api/v1/payments/order-123", 418, `{"error":{"code":"TEAPOT","message":"x"}}`},
	} {
		if valid(http.MethodGet, c.path, c.status, c.body) {
			t.Errorf("%s passes", name)
		}
	}
	// The stream's data is checked against component schemas (checkEvents).
	schemas := schema_validation.NewSchemaValidator(config.WithFormatAssertions())
	live := model(t).Components.Schemas.GetOrZero("LiveEvent").Schema()
	if ok, _ := schemas.ValidateSchemaBytes(live, []byte(`{"status":"SUCCESS","event":{}}`)); ok {
		t.Error("an empty event envelope passes LiveEvent")
	}
	if ok, errs := schemas.ValidateSchemaBytes(model(t).Components.Schemas.GetOrZero("Payment").Schema(), []byte(payment)); !ok {
		t.Errorf("a valid payment is refused by the Payment schema: %v", errs[0].Reason)
	}
}
