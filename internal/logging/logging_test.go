package logging_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/slogtest"

	"github.com/google/uuid"

	"github.com/paymentledger/ledger/internal/logging"
)

// lines decodes each JSON log line in buf.
func lines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

func TestRequestIDReachesEveryLogLineOfTheRequest(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(logging.NewHandler(slog.NewJSONHandler(&buf, nil)))
	grouped := logger.With("component", "api").WithGroup("payment").With("orderId", "o-1")

	h := logging.RequestIDMiddleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		logger.InfoContext(r.Context(), "plain")
		grouped.InfoContext(r.Context(), "grouped", "amount", "1000")
		// As commands do before calling Toss: the detached context keeps the id.
		logger.InfoContext(context.WithoutCancel(r.Context()), "detached")
		logger.Info("no context") // without the context there is nothing to add
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))

	id := rec.Header().Get(logging.Header)
	if u, err := uuid.Parse(id); err != nil || u.Version() != 7 {
		t.Fatalf("response X-Request-Id %q, want a UUIDv7 (%v)", id, err)
	}
	got := lines(t, &buf)
	if len(got) != 4 {
		t.Fatalf("%d log lines, want 4: %s", len(got), buf.String())
	}
	for _, l := range got[:3] {
		if l[logging.Key] != id {
			t.Errorf("line %q: requestId = %v, want %q at the top level", l["msg"], l[logging.Key], id)
		}
	}
	payment, _ := got[1]["payment"].(map[string]any)
	if payment["orderId"] != "o-1" || payment["amount"] != "1000" || got[1]["component"] != "api" {
		t.Errorf("grouped line lost its attributes: %v", got[1])
	}
	if _, ok := payment[logging.Key]; ok {
		t.Errorf("requestId inside the group: %v", got[1])
	}
	if _, ok := got[3][logging.Key]; ok {
		t.Errorf("line logged without a context has a requestId: %v", got[3])
	}
}

func TestIncomingRequestID(t *testing.T) {
	valid128 := strings.Repeat("a", 128)
	for _, tc := range []struct {
		name, in string
		keep     bool
	}{
		{"uuid", "0190a6e4-8f1c-7b3e-9d2a-5f6e7d8c9b0a", true},
		{"all allowed characters", "AZaz09._:-", true},
		{"one character", "x", true},
		{"128 characters", valid128, true},
		{"empty", "", false},
		{"NUL", "abc\x00def", false},
		{"newline", "abc\ninjected log line", false},
		{"carriage return", "abc\rdef", false},
		{"space", "abc def", false},
		{"markup", "<script>", false},
		{"200 characters", strings.Repeat("a", 200), false},
		{"129 characters", valid128 + "a", false},
		{"invalid UTF-8", "abc\xff\xfedef", false},
		{"non-ASCII letter", "주문-1", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			logger := slog.New(logging.NewHandler(slog.NewJSONHandler(&buf, nil)))
			var inCtx string
			h := logging.RequestIDMiddleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				inCtx = logging.RequestID(r.Context())
				logger.InfoContext(r.Context(), "handled")
			}))
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			req.Header[logging.Header] = []string{tc.in} // set raw: Header.Set would not refuse these either
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)

			out := rec.Header().Get(logging.Header)
			if out != inCtx {
				t.Errorf("response id %q, context id %q: want the same", out, inCtx)
			}
			if tc.keep {
				if out != tc.in {
					t.Errorf("id %q replaced by %q, want it kept", tc.in, out)
				}
				return
			}
			if u, err := uuid.Parse(out); err != nil || u.Version() != 7 {
				t.Errorf("id %q answered as %q, want a new UUIDv7", tc.in, out)
			}
			if tc.in != "" && (strings.Contains(out, tc.in) || strings.Contains(buf.String(), tc.in)) {
				t.Errorf("refused id %q echoed: header %q, log %s", tc.in, out, buf.String())
			}
			if l := lines(t, &buf); len(l) != 1 || l[0][logging.Key] != out {
				t.Errorf("log %s, want one line with requestId %q", buf.String(), out)
			}
		})
	}
}

func TestRequestIDContext(t *testing.T) {
	ctx := context.Background()
	if got := logging.RequestID(ctx); got != "" {
		t.Fatalf("RequestID of a bare context = %q, want empty", got)
	}
	if got := logging.RequestID(logging.WithRequestID(ctx, "r-1")); got != "r-1" {
		t.Fatalf("RequestID = %q, want r-1", got)
	}
}

// TestHandlerConformance runs the standard library's handler tests on the wrapper, without a
// request id and with one (which must then be the only addition).
func TestHandlerConformance(t *testing.T) {
	for _, withID := range []bool{false, true} {
		name := "without id"
		if withID {
			name = "with id"
		}
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			slogtest.Run(t, func(*testing.T) slog.Handler {
				buf.Reset()
				h := logging.NewHandler(slog.NewJSONHandler(&buf, nil))
				if withID {
					return withContextID{h}
				}
				return h
			}, func(t *testing.T) map[string]any {
				l := lines(t, &buf)
				if len(l) != 1 {
					t.Fatalf("%d lines, want 1: %s", len(l), buf.String())
				}
				m := l[0]
				if withID {
					if m[logging.Key] != "r-1" {
						t.Errorf("requestId = %v, want r-1 at the top level: %s", m[logging.Key], buf.String())
					}
					delete(m, logging.Key)
				}
				return m
			})
		})
	}
}

// withContextID hands every record to h with a context carrying the id "r-1", as a request's
// log calls would.
type withContextID struct{ h slog.Handler }

func (w withContextID) Enabled(ctx context.Context, l slog.Level) bool { return w.h.Enabled(ctx, l) }

func (w withContextID) Handle(ctx context.Context, r slog.Record) error {
	return w.h.Handle(logging.WithRequestID(ctx, "r-1"), r)
}

func (w withContextID) WithAttrs(as []slog.Attr) slog.Handler {
	return withContextID{w.h.WithAttrs(as)}
}

func (w withContextID) WithGroup(name string) slog.Handler { return withContextID{w.h.WithGroup(name)} }
