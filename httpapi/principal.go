package httpapi

import (
	"context"

	"github.com/paymentledger/ledger/domain"
)

// Principal is who a request acts for: the merchant its API key belongs to. Every command and
// query a request makes is scoped to Principal.Merchant. (The key's scopes are checked before
// the handler runs; KeyID is there for limits per key, such as the live streams'.)
type Principal struct {
	Merchant domain.MerchantID
	KeyID    domain.APIKeyID
}

type principalKey struct{}

func withPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// principalOf returns the request's principal; the zero Principal when none was set (a route
// without an API key), whose empty merchant every command and query refuses.
func principalOf(ctx context.Context) Principal {
	p, _ := ctx.Value(principalKey{}).(Principal)
	return p
}

// logFields are attributes a handler learns (the order it acts on) that the request's access
// and error log lines must carry.
type logFields struct{ orderID domain.OrderID }

type logFieldsKey struct{}

func (f *logFields) attrs() []any {
	if f == nil || f.orderID == "" {
		return nil
	}
	return []any{"orderId", f.orderID}
}

func fieldsOf(ctx context.Context) *logFields {
	f, _ := ctx.Value(logFieldsKey{}).(*logFields)
	return f
}
