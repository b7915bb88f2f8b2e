package logging

import "net/http"

// StatusRecorder remembers the status an http.Handler answered with, for an access log line.
// Status is 200 until WriteHeader is called; Wrote says whether anything was written (a
// handler that panics after writing cannot be answered with an error any more). Unwrap lets
// http.ResponseController reach the connection (Flush and write deadlines of streams).
type StatusRecorder struct {
	http.ResponseWriter
	Status int
	Wrote  bool
}

// NewStatusRecorder wraps w.
func NewStatusRecorder(w http.ResponseWriter) *StatusRecorder {
	return &StatusRecorder{ResponseWriter: w, Status: http.StatusOK}
}

// WriteHeader records the first status written.
func (s *StatusRecorder) WriteHeader(code int) {
	if !s.Wrote {
		s.Status, s.Wrote = code, true
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *StatusRecorder) Write(b []byte) (int, error) {
	s.Wrote = true
	return s.ResponseWriter.Write(b)
}

// Unwrap returns the wrapped writer.
func (s *StatusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }
