package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/mux"
)

// unmatched is the route label of a request that matched no route.
const unmatched = "unmatched"

// HTTPMiddleware records each request's duration in paymentledger_http_request_duration_seconds
// under the route's path template (/api/v1/payments/{orderId}), never the path, so order ids
// never become labels.
//
// It must be installed on the gorilla/mux router, router.Use(m.HTTPMiddleware): the matched
// route (mux.CurrentRoute) is only known inside the router. mux runs router middleware only for
// a matched route, so also wrap the router's NotFoundHandler and MethodNotAllowedHandler with
// it; those requests are recorded with route "unmatched":
//
//	router.Use(m.HTTPMiddleware)
//	router.NotFoundHandler = m.HTTPMiddleware(notFound)
//	router.MethodNotAllowedHandler = m.HTTPMiddleware(methodNotAllowed)
//
// The status code is the one written (200 when the handler only writes a body or nothing, 500
// when it panics before writing; the panic goes on to the caller). The ResponseWriter it passes
// on implements http.Flusher and Unwrap, so streaming (SSE) and http.ResponseController keep
// working. On a nil *Metrics it returns next.
func (m *Metrics) HTTPMiddleware(next http.Handler) http.Handler {
	if m == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		route := unmatched
		if cr := mux.CurrentRoute(r); cr != nil {
			if tpl, err := cr.GetPathTemplate(); err == nil {
				route = tpl
			} else {
				route = "no_path_template" // a route matched by host or a function only
			}
		}
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		returned := false
		defer func() {
			code := sw.code
			if code == 0 {
				code = http.StatusOK // net/http's answer when the handler wrote nothing
				if !returned {
					code = http.StatusInternalServerError // it panicked before writing
				}
			}
			m.httpDuration.WithLabelValues(route, methodLabel(r.Method), strconv.Itoa(code)).
				Observe(time.Since(start).Seconds())
		}()
		next.ServeHTTP(sw, r)
		returned = true
	})
}

// methodLabel keeps the standard methods and folds the rest, which any client can invent, into
// "other".
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "other"
}

// statusWriter remembers the status code written through it.
type statusWriter struct {
	http.ResponseWriter
	code int // 0 until the header is written
}

func (w *statusWriter) WriteHeader(code int) {
	// 1xx answers (103 Early Hints) precede the real one; 101 is final.
	if w.code == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Flush implements http.Flusher for handlers that assert it (SSE).
func (w *statusWriter) Flush() { _ = w.FlushError() }

// FlushError is what http.ResponseController.Flush calls; it reports an underlying writer that
// cannot flush.
func (w *statusWriter) FlushError() error {
	if w.code == 0 {
		w.code = http.StatusOK // flushing sends the header
	}
	return http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the underlying writer (deadlines, hijacking).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
