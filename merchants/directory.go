package merchants

import (
	"context"
	"sync"

	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/psp/toss"
)

// Directory gives each merchant a Toss client with the merchant's own secret key, all on one
// base URL. A Directory's clients are its own (their own connection pools): paymentd gives the
// API, the recovery sweeper and the settlement import a Directory each, a bulkhead between them.
// It is safe for concurrent use.
type Directory struct {
	svc     *Service
	baseURL string
	opts    []toss.Option

	mu      sync.Mutex
	clients map[domain.MerchantID]dirEntry
}

type dirEntry struct {
	credential string
	client     *toss.Client
}

// NewDirectory returns a Directory on baseURL; opts apply to every client.
func (s *Service) NewDirectory(baseURL string, opts ...toss.Option) *Directory {
	return &Directory{svc: s, baseURL: baseURL, opts: opts, clients: map[domain.MerchantID]dirEntry{}}
}

// Client returns the merchant's Toss client: domain.ErrMerchantNotConfigured when the merchant
// has no Toss secret key, domain.ErrMerchantNotFound when there is no such merchant. A new key
// (TossCredentialsSet) is picked up within the service's CacheTTL.
func (d *Directory) Client(ctx context.Context, id domain.MerchantID) (*toss.Client, error) {
	m, err := d.svc.state(ctx, id)
	if err != nil {
		return nil, err
	}
	if m.TossCredential == "" {
		return nil, domain.Errorf(domain.ErrMerchantNotConfigured,
			"merchant %s has no Toss secret key; set one with paymentctl merchants set-toss-key or PUT /admin/v1/merchants/%s/toss-key", id, id)
	}
	d.mu.Lock()
	e, ok := d.clients[id]
	d.mu.Unlock()
	if ok && e.credential == m.TossCredential {
		return e.client, nil
	}
	secret, err := d.svc.openSecret(ctx, id, m.TossCredential)
	if err != nil {
		return nil, err
	}
	client, err := toss.New(d.baseURL, secret, d.opts...)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	d.clients[id] = dirEntry{credential: m.TossCredential, client: client}
	d.mu.Unlock()
	return client, nil
}
