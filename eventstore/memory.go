package eventstore

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/google/uuid"
)

// Memory is an in-memory Store for tests and demos. The global order is the append order
// (Position{Transaction: n, Sequence: n} for the n-th event), which is commit order because
// appends are serialized by one mutex. It keeps the same hash chain as Postgres, keyed when it
// is built WithChainKey (the key is active from its first event: a Memory starts empty).
// Nothing survives the process. A Memory is safe for concurrent use.
type Memory struct {
	key     ChainKey
	mu      sync.Mutex
	log     []RecordedEvent   // every event, in global order
	streams map[string][]int  // stream ID -> indexes into log, in version order
	ids     map[uuid.UUID]int // event ID -> index into log
	wakeCh  chan struct{}     // closed (and replaced) by every append
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty in-memory store.
func NewMemory(opts ...Option) *Memory {
	return &Memory{
		key:     applyOptions(opts).key,
		streams: map[string][]int{},
		ids:     map[uuid.UUID]int{},
		wakeCh:  make(chan struct{}),
	}
}

// Append implements Store.
func (m *Memory) Append(ctx context.Context, stream string, expected ExpectedVersion, events []EventData) (AppendResult, error) {
	req, err := newAppendRequest(stream, expected, events)
	if err != nil {
		return AppendResult{}, err
	}
	if err := ctx.Err(); err != nil {
		return AppendResult{}, appendError(stream, err)
	}
	res, err := m.append(req)
	return res, appendError(stream, err)
}

func (m *Memory) append(req appendRequest) (AppendResult, error) {
	m.mu.Lock()
	defer m.mu.Unlock()

	found := map[uuid.UUID]storedAt{}
	for _, id := range req.ids {
		if i, ok := m.ids[id]; ok {
			found[id] = storedAt{stream: m.log[i].StreamID, version: m.log[i].Version}
		}
	}
	if len(found) > 0 {
		return req.retry(found)
	}
	idx := m.streams[req.stream]
	version, prevHash, headAlg := int64(0), zeroHash, HashSHA256
	if len(idx) > 0 {
		head := m.log[idx[len(idx)-1]]
		version, prevHash, headAlg = head.Version, head.Hash, head.HashAlg
	}
	if err := req.checkExpected(version); err != nil {
		return AppendResult{}, err
	}
	if err := req.checkChainKey(m.key, headAlg, false); err != nil {
		return AppendResult{}, err
	}
	for _, r := range req.records(version, prevHash, time.Now(), m.key) {
		n := int64(len(m.log) + 1)
		r.Position = Position{Transaction: uint64(n), Sequence: n}
		r.Data = bytes.Clone(r.Data) // the caller may reuse its buffer
		m.ids[r.ID] = len(m.log)
		m.streams[req.stream] = append(m.streams[req.stream], len(m.log))
		m.log = append(m.log, r)
	}
	close(m.wakeCh)
	m.wakeCh = make(chan struct{})
	return AppendResult{NextExpectedVersion: m.log[len(m.log)-1].Version}, nil
}

// copyEvent returns e with its own byte slices, so callers cannot change what the store holds.
func copyEvent(e RecordedEvent) RecordedEvent {
	e.Data = bytes.Clone(e.Data)
	e.MetadataJSON = bytes.Clone(e.MetadataJSON)
	e.PrevHash = bytes.Clone(e.PrevHash)
	e.Hash = bytes.Clone(e.Hash)
	return e
}

// ReadStream implements Store.
func (m *Memory) ReadStream(ctx context.Context, stream string, from int64) ([]RecordedEvent, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("eventstore: read stream %q: %w", stream, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	idx := m.streams[stream]
	if len(idx) == 0 {
		return nil, fmt.Errorf("eventstore: read stream %q: %w", stream, ErrStreamNotFound)
	}
	out := []RecordedEvent{}
	for _, i := range idx {
		if m.log[i].Version >= from {
			out = append(out, copyEvent(m.log[i]))
		}
	}
	return out, nil
}

// ReadVerified implements the same contract as Postgres.ReadVerified. The memory store keeps no
// head apart from its events, so the last event stands for it.
func (m *Memory) ReadVerified(ctx context.Context, stream string) ([]RecordedEvent, error) {
	events, err := m.ReadStream(ctx, stream, 1)
	if err != nil {
		return nil, err
	}
	v, _ := m.Verifier(ctx)
	last := events[len(events)-1]
	if err := v.VerifyStream(stream, events, Head{Version: last.Version, Hash: last.Hash}); err != nil {
		return nil, err
	}
	return events, nil
}

// Verifier returns the store's chain verifier: with its chain key, active from the first event,
// or the plain verifier for a store without one. It never fails.
func (m *Memory) Verifier(context.Context) (Verifier, error) {
	if m.key.IsZero() {
		return Verifier{}, nil
	}
	return Verifier{key: m.key, activated: true, activation: Start}, nil
}

// ReadAll implements Store.
func (m *Memory) ReadAll(ctx context.Context, from Position, limit int) ([]RecordedEvent, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("eventstore: read all: %w: limit %d", ErrInvalidArgument, limit)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("eventstore: read all from %s: %w", from, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	events, _ := m.readAllLocked(from, limit)
	return events, nil
}

// readAllLocked returns up to limit events after from and the channel the next append closes.
func (m *Memory) readAllLocked(from Position, limit int) ([]RecordedEvent, <-chan struct{}) {
	start := sort.Search(len(m.log), func(i int) bool { return from.Less(m.log[i].Position) })
	end := min(start+limit, len(m.log))
	out := make([]RecordedEvent, 0, end-start)
	for _, e := range m.log[start:end] {
		out = append(out, copyEvent(e))
	}
	return out, m.wakeCh
}

// Subscribe implements Store. Appends wake waiting subscribers at once.
func (m *Memory) Subscribe(ctx context.Context, from Position, batchSize int, handle func(context.Context, []RecordedEvent) error) error {
	if batchSize <= 0 || handle == nil {
		return fmt.Errorf("eventstore: subscribe: %w: batch size %d, handler set %t", ErrInvalidArgument, batchSize, handle != nil)
	}
	pos := from
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		m.mu.Lock()
		events, wake := m.readAllLocked(pos, batchSize)
		m.mu.Unlock()
		if len(events) > 0 {
			if err := handle(ctx, events); err != nil {
				return err
			}
			pos = events[len(events)-1].Position
			continue
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-wake:
		}
	}
}
