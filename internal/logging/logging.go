// Package logging owns request-scoped logging: the request id, how it enters a request
// (RequestIDMiddleware), how it travels (the context) and how it reaches every log line
// (NewHandler).
//
// The id travels in the context, so it reaches a log line only through the *Context logging
// methods (InfoContext, Log, ...) or a Handler called with that context. It survives
// context.WithoutCancel, which keeps values: the commands package detaches its PSP calls and
// their follow-up writes that way, so their log lines carry the id of the request that started
// them.
package logging

import (
	"context"
	"log/slog"
	"net/http"
	"slices"

	"github.com/google/uuid"
)

// Header is the HTTP header that carries the request id, in both directions.
const Header = "X-Request-Id"

// Key is the attribute under which NewHandler logs the request id.
const Key = "requestId"

// maxIDLen bounds an incoming id: longer ones are replaced, never cut, so a log line never
// carries half of someone else's id.
const maxIDLen = 128

type ctxKey struct{}

// WithRequestID returns a copy of ctx that carries id.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// RequestID returns the id ctx carries, or "" when it carries none.
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(ctxKey{}).(string)
	return id
}

// RequestIDMiddleware gives each request an id: the incoming X-Request-Id when it is 1 to 128
// characters of [A-Za-z0-9._:-] (so a caller's or a proxy's id links its logs to ours), else a
// new UUIDv7 (time-ordered, so ids sort roughly by arrival). An id that fails the check is
// dropped, never echoed or logged: it could carry newlines or markup into logs and answers. The
// id is set on the response's X-Request-Id before next runs, and in the request's context
// (RequestID). Install it outermost, so that the access log and the panic handler run inside it.
func RequestIDMiddleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(Header)
		if !validID(id) {
			id = newID()
		}
		w.Header().Set(Header, id)
		next.ServeHTTP(w, r.WithContext(WithRequestID(r.Context(), id)))
	})
}

func validID(id string) bool {
	if id == "" || len(id) > maxIDLen {
		return false
	}
	for i := range len(id) { // bytes: any non-ASCII byte fails, so invalid UTF-8 does too
		switch c := id[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '.', c == '_', c == ':', c == '-':
		default:
			return false
		}
	}
	return true
}

// newID returns a UUIDv7. crypto/rand cannot fail since Go 1.24 (it ends the program instead),
// so neither can NewV7.
func newID() string {
	return uuid.Must(uuid.NewV7()).String()
}

// NewHandler wraps h so that every record handled with a context carrying a request id gets the
// attribute requestId, at the top level even when the logger has open groups (WithGroup): a log
// search finds it in one place. Records without an id pass through unchanged. The returned
// handler is safe for concurrent use when h is.
func NewHandler(h slog.Handler) slog.Handler {
	return &handler{base: h, cur: h}
}

// handler keeps base, the wrapped handler before any WithAttrs or WithGroup, and the steps taken
// since, so that after a WithGroup it can still add requestId outside the groups: it adds it to
// base and replays the steps. Without a group, adding it to the record is enough (and cheaper).
type handler struct {
	base      slog.Handler
	steps     []step
	cur       slog.Handler // base with steps applied
	hasGroups bool
}

// step is one WithAttrs (group == "") or one WithGroup.
type step struct {
	group string
	attrs []slog.Attr
}

func (h *handler) Enabled(ctx context.Context, l slog.Level) bool { return h.cur.Enabled(ctx, l) }

func (h *handler) Handle(ctx context.Context, r slog.Record) error {
	id := RequestID(ctx)
	if id == "" {
		return h.cur.Handle(ctx, r)
	}
	if !h.hasGroups {
		r = r.Clone() // the caller may keep the record; AddAttrs must not show through
		r.AddAttrs(slog.String(Key, id))
		return h.cur.Handle(ctx, r)
	}
	out := h.base.WithAttrs([]slog.Attr{slog.String(Key, id)})
	for _, s := range h.steps {
		if s.group != "" {
			out = out.WithGroup(s.group)
		} else {
			out = out.WithAttrs(s.attrs)
		}
	}
	return out.Handle(ctx, r)
}

func (h *handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	return h.with(step{attrs: slices.Clone(attrs)}, h.cur.WithAttrs(attrs))
}

func (h *handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return h.with(step{group: name}, h.cur.WithGroup(name))
}

func (h *handler) with(s step, cur slog.Handler) *handler {
	return &handler{
		base:      h.base,
		steps:     append(slices.Clip(h.steps), s),
		cur:       cur,
		hasGroups: h.hasGroups || s.group != "",
	}
}
