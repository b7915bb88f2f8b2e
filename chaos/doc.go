// Package chaos holds the end-to-end fault test: real paymentd and tosssim processes, Toss
// faults injected (errors, lost responses, latency, duplicated and reordered webhooks), paymentd
// killed with SIGKILL at random moments, and the final state checked against the simulator's
// truth. It has no code of its own.
package chaos
