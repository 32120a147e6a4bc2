# skyward: build, test, demo, lint, bench.
GO      ?= go
BIN     := bin/skyward
COMMIT  := $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS := -s -w -X github.com/skyward-sh/skyward/cli.Commit=$(COMMIT)

# The binary is copied onto every node, so it must be static.
export CGO_ENABLED = 0

# make install puts the static binary in $(PREFIX)/bin.
PREFIX  ?= $(shell $(GO) env GOPATH)

.PHONY: build install test fuzz demo lint bench base-image clean

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) .

install: build
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/skyward
	@echo "Installed $(DESTDIR)$(PREFIX)/bin/skyward (static)"

# The Debian base image that tests and the demo give the container provider.
base-image:
	@bash testdata/mkbaseimage.sh >/dev/null

test: build base-image lint
	SKYWARD_TEST_IMAGE=$$(bash testdata/mkbaseimage.sh) SKYWARD_AGENT_BINARY=$(CURDIR)/$(BIN) \
		$(GO) test -count=1 -timeout 45m ./...

# Each fuzz target runs for FUZZTIME from its committed seed corpus
# (testdata/fuzz/); a crash fails the run and leaves the input in
# testdata/fuzz/ to commit as a regression seed. `go test` runs the seeds
# alone as ordinary tests.
FUZZTIME ?= 20s
FUZZ_TARGETS := ./hclspec:FuzzLoad ./state:FuzzRead ./planner:FuzzDecodePlanFile ./planner:FuzzParseAddress ./agent:FuzzWire

fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t#*:}; \
		echo "fuzz: $$name ($$pkg) for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) $$pkg; \
	done

lint: build
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt: files above need formatting"; exit 1; }
	$(GO) vet ./...
	./$(BIN) fmt -check -recursive examples
	@for d in examples/*/; do ./$(BIN) -chdir=$$d validate >/dev/null || { echo "$$d: skyward validate failed"; exit 1; }; done

# The demo runs examples/local (copied to a scratch directory).
demo: build base-image
	bash examples/demo.sh "$(CURDIR)/$(BIN)" "$$(bash testdata/mkbaseimage.sh)"

bench: build base-image
	SKYWARD_TEST_IMAGE=$$(bash testdata/mkbaseimage.sh) SKYWARD_AGENT_BINARY=$(CURDIR)/$(BIN) \
		$(GO) test -run '^$$' -bench . -benchtime 3x -count 1 -timeout 30m ./...

clean:
	rm -rf bin
