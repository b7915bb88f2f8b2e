package httpapi

import (
	"context"

	"github.com/paymentledger/ledger/domain"
)

// Principal is who a request acts for: the merchant its API key belongs to, the key and the
// key's scopes. Every command and query a request makes is scoped to Principal.Merchant.
type Principal struct {
	Merchant domain.MerchantID
	KeyID    domain.APIKeyID
	Scopes   []domain.Scope
}

type principalKey struct{}

func withPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// principalOf returns the request's principal; the zero Principal when none was set.
func principalOf(ctx context.Context) Principal {
	p, _ := ctx.Value(principalKey{}).(Principal)
	return p
}
