package natsbus

import "github.com/paymentledger/ledger/eventstore"

// SetAfterAck sets a hook run after a batch is acknowledged and before its checkpoint.
func (r *Relay) SetAfterAck(f func(batch []eventstore.RecordedEvent)) { r.afterAck = f }
