# Lookout + WebStore. The README's two commands: `make run` and `make test`.
GO       ?= go
BIN      := bin
PEERS    := .cache/bin
GOFLAGS  ?= -buildvcs=false
export GOFLAGS
# The version both binaries report (lookout --version, buildinfo in both APIs).
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo unknown)
LDFLAGS  := -X github.com/lookout-dev/lookout/internal/buildinfo.version=$(VERSION)

.PHONY: all build ui run test test-go test-web vet lint bench peers clean

all: build

# The web UI is built into internal/ui/dist and embedded into the lookout binary.
ui:
	@if [ -f web/package.json ]; then \
		cd web && { [ -d node_modules ] || { echo "==> installing the UI's npm packages (first run: ~80 MB)"; npm ci --no-audit --no-fund; }; } && \
		echo "==> building the UI (web/ -> internal/ui/dist)" && npm run build --silent; \
	fi

build: ui
	@echo "==> building bin/lookout and bin/webstore $(VERSION) (the first build downloads ~380 MB of Go modules and takes 5-10 minutes)"
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/lookout ./cmd/lookout
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/webstore ./cmd/webstore
	@echo "==> built"

# Lookout + WebStore services + traffic, then open http://localhost:3000
run: build
	@echo "==> starting Lookout + WebStore + traffic (Ctrl-C stops); open http://localhost:3000"
	./$(BIN)/webstore demo

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }

# Real peers (Prometheus, promtool, telemetrygen, collector builder) built with
# `go install` into the gitignored .cache/bin; tests build them on demand too.
peers:
	GOBIN=$(CURDIR)/$(PEERS) CGO_ENABLED=0 $(GO) install github.com/prometheus/prometheus/cmd/prometheus@v0.316.0
	GOBIN=$(CURDIR)/$(PEERS) CGO_ENABLED=0 $(GO) install github.com/prometheus/prometheus/cmd/promtool@v0.316.0
	GOBIN=$(CURDIR)/$(PEERS) CGO_ENABLED=0 $(GO) install github.com/open-telemetry/opentelemetry-collector-contrib/cmd/telemetrygen@v0.161.0

# The shop's end-to-end scenarios (cmd/webstore) time spike analyses of live
# traffic against the analysis's 60 s timeout: they run after the other
# packages, with the machine to themselves, not beside their -race tests.
test-go: ui
	$(GO) test -race -timeout 40m $$($(GO) list ./... | grep -v '/cmd/webstore$$')
	$(GO) test -race -timeout 40m ./cmd/webstore

test-web: build
	@if [ -f web/package.json ]; then cd web && npm test; fi

test: vet test-go test-web

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

clean:
	rm -rf $(BIN) internal/ui/dist/assets internal/ui/dist/index.html
