package tosssim

import (
	"crypto/sha256"
	"encoding/hex"
	"sync"
	"time"
)

// idemStore keeps the first answer per idempotency scope (toss-api.md §2). It has its own
// mutex so replays never wait for the payment truth.
type idemStore struct {
	ttl       time.Duration
	mu        sync.Mutex
	entries   map[string]*idemEntry
	lastSweep time.Time
}

type idemEntry struct {
	firstUse time.Time
	done     bool     // false while the first request is in flight
	resp     response // valid when done
}

type idemState int

const (
	idemOwner    idemState = iota // the caller runs the request and must finish or abandon
	idemReplay                    // a stored answer is returned
	idemInFlight                  // the first request with this scope is still running
)

func newIdemStore(ttl time.Duration) *idemStore {
	return &idemStore{ttl: ttl, entries: map[string]*idemEntry{}}
}

// idemScope is what Toss matches on: the key, the API key, the method and the path. The body
// is deliberately not part of it. It is a SHA-256 in hex, so a persisted simulator keeps no
// secret key in its tables.
func idemScope(key, secretKey, method, path string) string {
	sum := sha256.Sum256([]byte(key + "\x00" + secretKey + "\x00" + method + "\x00" + path))
	return hex.EncodeToString(sum[:])
}

// begin claims scope for the caller, or reports a stored answer or an in-flight first request.
func (st *idemStore) begin(scope string, now time.Time) (response, idemState) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.sweep(now)
	if e, ok := st.entries[scope]; ok {
		if !e.done {
			return response{}, idemInFlight
		}
		if now.Before(e.firstUse.Add(st.ttl)) {
			return e.resp, idemReplay
		}
		delete(st.entries, scope)
	}
	st.entries[scope] = &idemEntry{firstUse: now}
	return response{}, idemOwner
}

// finish stores the owner's answer for replay.
func (st *idemStore) finish(scope string, resp response) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if e, ok := st.entries[scope]; ok {
		e.done = true
		e.resp = resp
	}
}

// restore puts back an answer a persisted simulator saved before a restart.
func (st *idemStore) restore(a storedAnswer) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.entries[a.scope] = &idemEntry{firstUse: a.firstUse, done: true, resp: a.resp}
}

// abandon forgets an in-flight claim whose request produced no answer to store.
func (st *idemStore) abandon(scope string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if e, ok := st.entries[scope]; ok && !e.done {
		delete(st.entries, scope)
	}
}

// sweep drops expired answers, at most once per minute of the simulator's clock, so memory
// stays bounded in long runs. Callers hold st.mu.
func (st *idemStore) sweep(now time.Time) {
	if now.Sub(st.lastSweep) < time.Minute && !now.Before(st.lastSweep) {
		return
	}
	st.lastSweep = now
	for k, e := range st.entries {
		if e.done && !now.Before(e.firstUse.Add(st.ttl)) {
			delete(st.entries, k)
		}
	}
}
