package webhooks

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/paymentledger/ledger/domain"
)

// The spool keeps deliveries the database could not take in time, one JSON line each:
//
//	{"receivedAt":"…","merchant":"…","headers":{"name":["value"]},"body":"<base64>"}
//
// The inbox appends to activeSpool and fsyncs before it answers 200. The worker drains it: under
// the same lock it renames activeSpool to a draining file (new appends start a fresh file), then
// inserts every line of every draining file (the dedupe key makes a repeat harmless) and
// removes the file. A line the database refuses (not a connection problem) is moved to
// poisonSpool for a person, so it cannot block the rest.
//
// The lock is per process: a spool directory must belong to one process (paymentd's DATA_DIR).
const (
	activeSpool    = "webhook-inbox.jsonl"
	drainingPrefix = "webhook-inbox.draining."
	drainingSuffix = ".jsonl"
	poisonSpool    = "webhook-inbox.poison.jsonl"
)

// spoolLine is one spooled delivery. Merchant is empty in lines spooled before per-merchant
// URLs; they are stored without a merchant, as they were received.
type spoolLine struct {
	ReceivedAt time.Time           `json:"receivedAt"`
	Merchant   domain.MerchantID   `json:"merchant,omitempty"`
	Headers    map[string][]string `json:"headers"`
	Body       []byte              `json:"body"`
}

// spoolLocks holds one mutex per spool directory (absolute path), shared by the inboxes and
// workers of this process.
var spoolLocks sync.Map

func spoolLock(dir string) *sync.Mutex {
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	m, _ := spoolLocks.LoadOrStore(dir, &sync.Mutex{})
	return m.(*sync.Mutex)
}

// appendSpool appends line to the active spool file in dir and makes it durable (file and
// directory fsync) before returning.
func appendSpool(dir string, line spoolLine) error {
	b, err := json.Marshal(line)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	mu := spoolLock(dir)
	mu.Lock()
	defer mu.Unlock()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return appendLine(filepath.Join(dir, activeSpool), b)
}

// appendLine appends b to the file at path and fsyncs the file and its directory. If an earlier
// write was cut short (a crash, a full disk), the partial line is ended first, so it cannot
// swallow this one.
func appendLine(path string, b []byte) (err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if st.Size() > 0 {
		last := make([]byte, 1)
		if _, err := f.ReadAt(last, st.Size()-1); err != nil {
			return err
		}
		if last[0] != '\n' {
			b = append([]byte{'\n'}, b...)
		}
	}
	if _, err := f.Write(b); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// takeSpool moves the active spool file aside for draining and returns every draining file in
// dir, oldest first (earlier drains that did not finish included).
func takeSpool(dir string) ([]string, error) {
	mu := spoolLock(dir)
	mu.Lock()
	active := filepath.Join(dir, activeSpool)
	st, err := os.Stat(active)
	switch {
	case err == nil && st.Size() > 0:
		// Zero-padded stamps sort in time order; never rename over a file not yet drained.
		stamp := time.Now().UnixNano()
		target := filepath.Join(dir, fmt.Sprintf("%s%020d%s", drainingPrefix, stamp, drainingSuffix))
		for _, serr := os.Stat(target); serr == nil; _, serr = os.Stat(target) {
			stamp++
			target = filepath.Join(dir, fmt.Sprintf("%s%020d%s", drainingPrefix, stamp, drainingSuffix))
		}
		if err = os.Rename(active, target); err == nil {
			err = syncDir(dir)
		}
	case errors.Is(err, os.ErrNotExist):
		err = nil
	}
	mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("webhooks: take spool: %w", err)
	}
	files, err := filepath.Glob(filepath.Join(dir, drainingPrefix+"*"+drainingSuffix))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	return files, nil
}

// readSpool returns the lines of a spool file. A line that does not decode (a write cut short
// by a crash, which was never answered 200) is returned in bad.
func readSpool(path string) (lines []spoolLine, bad [][]byte, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	r := bufio.NewReader(f)
	for {
		raw, rerr := r.ReadBytes('\n')
		if t := bytes.TrimSpace(raw); len(t) > 0 {
			var l spoolLine
			if err := json.Unmarshal(t, &l); err != nil {
				bad = append(bad, t)
			} else {
				lines = append(lines, l)
			}
		}
		if errors.Is(rerr, io.EOF) {
			return lines, bad, nil
		}
		if rerr != nil {
			return nil, nil, rerr
		}
	}
}

// poison keeps lines the database refused in poisonSpool for a person to look at.
func poison(dir string, raw []byte) error {
	mu := spoolLock(dir)
	mu.Lock()
	defer mu.Unlock()
	return appendLine(filepath.Join(dir, poisonSpool), append(bytes.TrimSpace(raw), '\n'))
}
