# Baton's developer commands. `make help` lists them.
GO ?= go
# staticcheck at a pinned version, built from the Go module proxy on first
# use (no install step); staticcheck.conf says which checks run.
STATICCHECK ?= $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: help test lint fmt-check bench bench-smoke dev-example ui-assets ui-screenshots

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  %-14s %s\n", $$1, $$2}'

test: lint ## run every test with the race detector, with a throwaway PostgreSQL and Chromium (what CI runs)
	scripts/with-chromium.sh scripts/with-postgres.sh $(GO) test -race -count=1 -timeout 20m ./...

lint: fmt-check ## gofmt, go vet, staticcheck and go mod tidy must be clean (also in the example module)
	$(GO) vet ./...
	$(STATICCHECK) ./...
	$(GO) mod tidy -diff
	cd examples/clientmod && $(GO) vet ./... && $(STATICCHECK) ./... && $(GO) mod tidy -diff

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

bench: ## run the local benchmark suite (several minutes)
	$(GO) run ./bench local

bench-smoke: ## run the benchmark suite once at a tiny scale
	$(GO) run ./bench local -scale 0.001

ui-assets: ## refresh the web UI's vendored JavaScript from the npm registry (needs npm; go build does not)
	scripts/ui-assets.sh

ui-screenshots: ## save PNG screenshots of the web UI's main pages over sample runs into docs/ui (needs Chromium: scripts/with-chromium.sh)
	scripts/with-chromium.sh env BATON_SCREENSHOTS_DIR=$(CURDIR)/docs/ui BATON_REQUIRE_BROWSER=1 $(GO) test -count=1 -run '^TestScreenshots$$' -v ./internal/ui/

dev-example: ## run the ETL example on the embedded store
	$(GO) run ./examples/etl
