package webhooks

import (
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// An append after a write that was cut short starts on a new line, so the torn line cannot
// swallow a delivery that was answered 200.
func TestAppendAfterATornWrite(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, activeSpool), []byte(`{"receivedAt":"2026-`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := appendSpool(dir, spoolLine{ReceivedAt: time.Now(), Body: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	lines, bad, err := readSpool(filepath.Join(dir, activeSpool))
	if err != nil || len(lines) != 1 || string(lines[0].Body) != `{}` || len(bad) != 1 {
		t.Fatalf("lines %+v, bad %q, %v", lines, bad, err)
	}
}

func TestBackoffGrowsWithJitterUpToTheCap(t *testing.T) {
	w := &Worker{cfg: WorkerConfig{BaseBackoff: time.Second, MaxBackoff: time.Minute}.withDefaults()}
	for attempt, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 7: time.Minute, 40: time.Minute, 1000: time.Minute} {
		for range 50 {
			if d := w.backoff(attempt); d < want/2 || d > want {
				t.Fatalf("attempt %d: %s, want %s..%s", attempt, d, want/2, want)
			}
		}
	}
}

// Appends racing with drains lose nothing: every line lands in exactly one drained file.
func TestConcurrentSpoolAndDrainLoseNothing(t *testing.T) {
	dir := t.TempDir()
	const n = 200
	done := make(chan struct{})
	go func() {
		defer close(done)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				if err := appendSpool(dir, spoolLine{ReceivedAt: time.Now(), Body: []byte(strconv.Itoa(i))}); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
	}()
	seen := map[string]int{}
	drainAll := func() {
		files, err := takeSpool(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			lines, bad, err := readSpool(f)
			if err != nil || len(bad) != 0 {
				t.Fatalf("read %s: %v, %d bad", f, err, len(bad))
			}
			for _, l := range lines {
				seen[string(l.Body)]++
			}
			if err := os.Remove(f); err != nil {
				t.Fatal(err)
			}
		}
	}
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		drainAll()
	}
	drainAll()
	if len(seen) != n {
		t.Fatalf("%d distinct lines drained, want %d", len(seen), n)
	}
	for body, c := range seen {
		if c != 1 {
			t.Fatalf("line %s drained %d times", body, c)
		}
	}
}
