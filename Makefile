# Thin wrappers over the scripts; ARGS is passed on, e.g. make test ARGS="-run TestFoo ./httpapi/".
ARGS ?=

.PHONY: run test build tosssim bench

run:
	scripts/run $(ARGS)

test:
	scripts/test $(ARGS)

build:
	go build -o bin/ ./cmd/...

tosssim:
	go run ./cmd/tosssim $(ARGS)

bench:
	go test -run '^$$' -bench . -benchtime 2s ./eventstore/ ./httpapi/
