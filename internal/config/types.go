package config

import (
	"context"
	"encoding/base64"
	"net/netip"
	"strings"

	"github.com/paymentledger/ledger/secrets"
)

// Key is a 32-byte key, written in the environment in standard base64 (openssl rand -base64
// 32). Its decoder never repeats the value.
type Key []byte

// EnvDecode implements envconfig.DecoderCtx.
func (k *Key) EnvDecode(_ context.Context, v string) error {
	*k = nil
	if v == "" {
		return nil
	}
	b, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		return valueErrorf("the value (not shown) is not standard base64; make one with openssl rand -base64 32")
	}
	if len(b) != secrets.KeySize {
		return valueErrorf("the value (not shown) decodes to %d bytes, not %d; make one with openssl rand -base64 32", len(b), secrets.KeySize)
	}
	*k = b
	return nil
}

// Keys is a comma-separated list of [Key].
type Keys []Key

// EnvDecode implements envconfig.DecoderCtx.
func (ks *Keys) EnvDecode(ctx context.Context, v string) error {
	*ks = nil
	if v == "" {
		return nil
	}
	for i, part := range strings.Split(v, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			return valueErrorf("entry %d is empty", i+1)
		}
		var k Key
		if err := k.EnvDecode(ctx, part); err != nil {
			return valueErrorf("entry %d: %v", i+1, err)
		}
		*ks = append(*ks, k)
	}
	return nil
}

// Prefixes is a comma-separated list of IP addresses and CIDR blocks; an address stands for
// itself alone (a /32 or /128). Empty allows every address.
type Prefixes []netip.Prefix

// EnvDecode implements envconfig.DecoderCtx.
func (p *Prefixes) EnvDecode(_ context.Context, v string) error {
	*p = nil
	if v == "" {
		return nil
	}
	for _, part := range strings.Split(v, ",") {
		part = strings.TrimSpace(part)
		if strings.Contains(part, "/") {
			pfx, err := netip.ParsePrefix(part)
			if err != nil {
				return valueErrorf("%q is not a CIDR block such as 10.0.0.0/8", part)
			}
			// 10.0.0.1/8 is most likely a mistyped host (/32); allowing the whole /8 for it
			// would be a silent widening, so it is refused.
			if pfx.Masked() != pfx {
				return valueErrorf("%q has host bits set: write %s for the block or %s for the address", part, pfx.Masked(), pfx.Addr())
			}
			if pfx.Addr().Is4In6() && pfx.Bits() >= 96 {
				// Client addresses are unmapped before they are checked: match them as IPv4.
				pfx = netip.PrefixFrom(pfx.Addr().Unmap(), pfx.Bits()-96)
			}
			*p = append(*p, pfx)
			continue
		}
		addr, err := netip.ParseAddr(part)
		if err != nil || addr.Zone() != "" {
			return valueErrorf("%q is not an IP address or a CIDR block", part)
		}
		addr = addr.Unmap()
		*p = append(*p, netip.PrefixFrom(addr, addr.BitLen()))
	}
	return nil
}
