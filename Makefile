# credslots: build, test and lint targets. Tools are run with `go run
# module@version`, never added to go.mod.
GO                  ?= go
STATICCHECK_VERSION ?= v0.8.2
STATICCHECK         := $(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
FUZZTIME            ?= 10s
FUZZ_PKGS           ?= . ./internal/jsonscan ./internal/disk ./internal/journal

.PHONY: all test calls vet lint fmt-check staticcheck bench demo tidy-check cross compat fuzz interop interop-install interop-latest ci etcd bench-status

all: test

## test: go vet, then every test under the race detector
test: vet
	$(GO) test -race -count=1 ./...

## calls: the call-count and allocation tests (every test in calls_test.go),
## without the race detector, whose instrumentation allocates
calls:
	$(GO) test -count=1 -run "^($$(sed -n 's/^func \(Test[A-Za-z0-9_]*\)(.*/\1/p' calls_test.go | paste -sd'|' -))$$" .

vet:
	$(GO) vet ./...

## demo: walk through the incidents, then the command, on temporary creds dirs
demo:
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	$(GO) build -o "$$tmp/credslots" ./cmd/credslots && \
	$(GO) run ./examples/demo -cli "$$tmp/credslots"

## lint: gofmt check and staticcheck
lint: fmt-check staticcheck

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

staticcheck:
	$(STATICCHECK) ./...

## bench: every benchmark, with allocations; then each operation beside its
## floor (its fewest system calls, made directly), interleaved in one run, as
## a table of medians and their ratio (tmpfs when /dev/shm exists, else
## CREDSLOTS_BENCH_DIR or the temp dir)
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...
	$(GO) test -tags floorreport -count=1 -run '^TestFloorReport$$' -v .

## tidy-check: go mod tidy must leave go.mod and go.sum unchanged
tidy-check:
	@cp go.mod go.mod.orig && cp go.sum go.sum.orig; \
	$(GO) mod tidy; \
	status=0; \
	cmp -s go.mod go.mod.orig && cmp -s go.sum go.sum.orig || { echo "go mod tidy changes go.mod/go.sum:"; diff -u go.mod.orig go.mod; diff -u go.sum.orig go.sum; status=1; }; \
	mv go.mod.orig go.mod; mv go.sum.orig go.sum; exit $$status

## cross: the package, its tests included, builds and vets for macOS,
## Windows and FreeBSD too
cross:
	GOOS=darwin GOARCH=arm64 $(GO) vet ./...
	GOOS=windows GOARCH=amd64 $(GO) vet ./...
	GOOS=freebsd GOARCH=amd64 $(GO) vet ./...

## compat: the module, its tests included, still builds with the oldest Go it declares
GO_MIN ?= go1.22.12
compat:
	GOTOOLCHAIN=$(GO_MIN) $(GO) vet ./...

## fuzz: run each fuzz target for FUZZTIME. A run that ends only with the
## fuzzer's own "context deadline exceeded" (no failing input written) is
## run once more; any failing input fails.
fuzz:
	@for pkg in $(FUZZ_PKGS); do \
	for target in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
		echo "fuzz $$pkg $$target"; \
		for try in 1 2; do \
			out=$$($(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME) $$pkg 2>&1); status=$$?; \
			echo "$$out" | tail -3; \
			[ $$status -eq 0 ] && break; \
			if [ $$try -eq 1 ] && echo "$$out" | grep -q 'context deadline exceeded' && ! echo "$$out" | grep -q 'Failing input written'; then \
				echo "fuzz $$target: the fuzzer missed its own deadline; once more"; continue; \
			fi; \
			echo "$$out"; exit 1; \
		done; \
	done; \
	done

## interop: install the pinned real CLIs and proper-lockfile from the npm
## registry into interop/node_modules (git-ignored), then run credslots
## against them; fails, never skips, without node and npm
interop: interop-install
	$(GO) test -tags interop -count=1 -v ./interop/

interop-install:
	@command -v node >/dev/null && command -v npm >/dev/null || { echo "interop needs node and npm"; exit 1; }
	npm ci --prefix interop --no-audit --no-fund

## etcd: the etcd module (its own go.mod, so the root's ./... never
## reaches it): gofmt, go vet, staticcheck, the tidy check, then its tests
## on a real three-member cluster under the race detector
etcd:
	@out=$$(cd etcd && gofmt -l .); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	cd etcd && $(GO) vet ./...
	cd etcd && $(STATICCHECK) ./...
	$(MAKE) -C etcd -f ../Makefile tidy-check
	cd etcd && $(GO) test -race -count=1 ./...
## interop-latest: the same suite against the npm registry's newest release
## of each CLI, installed into interop/.latest (git-ignored); prints the
## versions it runs
INTEROP_LATEST := interop/.latest
interop-latest:
	@command -v node >/dev/null && command -v npm >/dev/null || { echo "interop needs node and npm"; exit 1; }
	rm -rf $(INTEROP_LATEST) && mkdir -p $(INTEROP_LATEST)
	printf '%s\n' '{"name":"credslots-interop-latest","version":"0.0.0","private":true,"license":"MIT",' \
		'"dependencies":{"@openai/codex":"latest","proper-lockfile":"latest"},' \
		'"optionalDependencies":{"claude-code-latest":"npm:@anthropic-ai/claude-code-linux-x64@latest"}}' \
		> $(INTEROP_LATEST)/package.json
	npm install --prefix $(INTEROP_LATEST) --no-audit --no-fund --no-save
	@echo "interop-latest: Claude Code $$(node -p 'require("./$(INTEROP_LATEST)/node_modules/claude-code-latest/package.json").version')," \
		"Codex CLI $$(node -p 'require("./$(INTEROP_LATEST)/node_modules/@openai/codex/package.json").version')," \
		"proper-lockfile $$(node -p 'require("./$(INTEROP_LATEST)/node_modules/proper-lockfile/package.json").version')"
	CREDSLOTS_INTEROP_MODULES=$(CURDIR)/$(INTEROP_LATEST) $(GO) test -tags interop -count=1 -v ./interop/

## ci: everything CI checks
ci: lint tidy-check cross compat demo
	$(MAKE) fuzz FUZZTIME=4s
	$(MAKE) calls
	$(MAKE) test
	$(MAKE) etcd
	$(MAKE) interop

## bench-status: the status command timed as processes, start-up included,
## at 3 and 100 captured slots, in turn: both medians and their ratio
## (SPEC 26: at most 1.5). BENCH_STATUS_DIR picks where the creds dirs are
## built (default: the temp dir)
bench-status:
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	$(GO) build -o "$$tmp/credslots" ./cmd/credslots && \
	$(GO) run ./examples/benchstatus -cli "$$tmp/credslots" $(if $(BENCH_STATUS_DIR),-dir $(BENCH_STATUS_DIR))
