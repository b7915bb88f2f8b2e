// Package natstest gives tests a real NATS server with JetStream: nats-server in-process on a
// random loopback port, storing in the test's temporary directory, shut down in t.Cleanup.
package natstest

import (
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Server is a running test server.
type Server struct {
	*server.Server
	StoreDir string
}

// Start starts a server for t. Restart the same store with StartAt.
func Start(t testing.TB) *Server {
	t.Helper()
	return StartAt(t, t.TempDir(), server.RANDOM_PORT)
}

// StartAt starts a server storing in dir on port (server.RANDOM_PORT for any), so that a test
// can stop a server and start it again on the same data and address.
func StartAt(t testing.TB, dir string, port int) *Server {
	t.Helper()
	srv, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: dir, NoSigs: true, NoLog: true,
	})
	if err != nil {
		t.Fatalf("natstest: %v", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		t.Fatal("natstest: nats-server did not start within 10s")
	}
	t.Cleanup(func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	return &Server{Server: srv, StoreDir: dir}
}

// URL is the server's client URL.
func (s *Server) URL() string { return s.ClientURL() }
