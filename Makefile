# cachewarp: every entry point a user or CI types. CMake does the building.
#   make deps    system packages (apt, idempotent), the MongoDB test server, FerretDB, Toxiproxy
#                and the kazaam reference (Go)
#   make build   build/cachewarp
#   make install the binary, its manual page, the example configuration and the systemd
#                unit cachewarp@.service under PREFIX (default /usr/local; DESTDIR works)
#   make test    deps + build + unit, integration, ASan/UBSan unit and fuzz smoke runs
#   make demo    the main job end to end on local data
#   make bench   benchmarks (figures, never assertions)
#   make soak    the long kill loop (1000 SIGKILLs; CW_SOAK_KILLS overrides) and every
#                fuzz target for 5 minutes under ASan/UBSan (CW_SOAK_FUZZ_SECONDS)
#   make bench-peers  Debezium embedded next to the pgoutput reference (downloads Debezium)

BUILD      ?= build
BUILD_ASAN ?= build-asan
BUILD_FUZZ ?= build-fuzz
BUILD_SOAK_FUZZ ?= build-fuzz-soak
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_GEN  := $(shell command -v ninja >/dev/null 2>&1 && echo "-G Ninja")
CTEST      := ctest --output-on-failure --no-tests=error

PREFIX     ?= /usr/local

.PHONY: all deps build install test test-unit test-integration test-asan test-fuzz demo bench bench-peers soak clean

all: build

deps:
	@bash scripts/deps.sh
	@bash tests/support/mongo.sh fetch
	@bash tests/support/ferretdb.sh fetch
	@bash tests/support/kazaam_ref.sh fetch
	@bash tests/support/toxiproxy.sh fetch

build:
	@cmake -S . -B $(BUILD) $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

install: build
	@DESTDIR=$(DESTDIR) cmake --install $(BUILD) --prefix $(PREFIX)

test: deps build
	cd $(BUILD) && $(CTEST) -j $(JOBS) -L 'unit|integration'
	@$(MAKE) --no-print-directory test-asan test-fuzz

test-unit: build
	cd $(BUILD) && $(CTEST) -j $(JOBS) -L unit

test-integration: build
	cd $(BUILD) && $(CTEST) -L integration

test-asan:
	@cmake -S . -B $(BUILD_ASAN) $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=Debug -DCW_SANITIZE=ON -DCW_FAILPOINTS=ON >/dev/null
	@cmake --build $(BUILD_ASAN) -j $(JOBS)
	cd $(BUILD_ASAN) && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 $(CTEST) -j $(JOBS) -L unit

test-fuzz:
	@CC=clang cmake -S . -B $(BUILD_FUZZ) $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=Debug -DCW_FUZZ=ON \
		-DCW_FUZZ_SECONDS=10 >/dev/null
	@cmake --build $(BUILD_FUZZ) -j $(JOBS)
	cd $(BUILD_FUZZ) && $(CTEST) -j $(JOBS) -L fuzz-smoke

demo: deps build
	@bash scripts/demo.sh

bench: deps build
	@bash bench/run.sh

# Not part of test or bench: the first run downloads Debezium from Maven Central.
bench-peers: build
	@bash bench/peers/run.sh

soak: deps build
	bash tests/reliability/kill_loop.sh --kills $${CW_SOAK_KILLS:-1000}
	@CC=clang cmake -S . -B $(BUILD_SOAK_FUZZ) $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=Debug -DCW_FUZZ=ON \
		-DCW_FUZZ_SECONDS=$${CW_SOAK_FUZZ_SECONDS:-300} >/dev/null
	@cmake --build $(BUILD_SOAK_FUZZ) -j $(JOBS)
	cd $(BUILD_SOAK_FUZZ) && $(CTEST) -j $(JOBS) -L fuzz-smoke

clean:
	rm -rf $(BUILD) $(BUILD_ASAN) $(BUILD_FUZZ) $(BUILD_SOAK_FUZZ)
