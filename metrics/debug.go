package metrics

import (
	"net/http"
	"net/http/pprof"
)

// DebugHandler serves net/http/pprof under /debug/pprof/ and, when m is not nil, the metrics
// under /metrics: the handler of the DEBUG_ADDR listener, which is off unless configured.
// Profiles and goroutine dumps show internals (and cost CPU while taken), so that listener
// belongs on a loopback or otherwise private address, never on the public one; its server's
// WriteTimeout must outlast the longest profile asked for (/debug/pprof/profile?seconds=30).
//
// The handlers are registered on a mux of their own. Importing net/http/pprof also registers
// them on http.DefaultServeMux (its init does), which is harmless as long as no server of the
// service serves DefaultServeMux (a nil http.Server.Handler would).
func DebugHandler(m *Metrics) http.Handler {
	mux := http.NewServeMux()
	// Index also serves the named profiles: /debug/pprof/heap, goroutine, allocs, block, mutex,
	// threadcreate.
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	if m != nil {
		mux.Handle("/metrics", m.Handler())
	}
	return mux
}
