# A thin wrapper over CMake. `make run` and `make test` are the two commands
# a newcomer needs; both install missing Debian packages first (as root).
JOBS ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: all build run test soak fuzz bench deps test-deps install format clean

all: build

deps:
	@scripts/install-deps.sh

test-deps:
	@scripts/install-deps.sh test

build: deps
	@cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DUSERSD_TESTS=OFF >/dev/null
	@cmake --build build -j $(JOBS)

run: build
	@scripts/run-demo.sh

# The sanitizer build lives in its own folder, so `make run` stays fast.
test: test-deps
	@cmake -S . -B build-test -DCMAKE_BUILD_TYPE=Debug -DUSERSD_SANITIZE=ON >/dev/null
	@cmake --build build-test -j $(JOBS)
	@cd build-test && ctest --output-on-failure -j $(JOBS)

# Fault rounds beyond `make test`: kill -9 under concurrent writes,
# SOAK_ROUNDS times (20) on each driver (tests/http/test_crash.py), every
# acknowledged write checked after each restart; and a pg_auto_failover
# monitor with two nodes, `pg_autoctl perform failover` under load
# (tests/http/pg_autofailover.py).
SOAK_ROUNDS ?= 20
soak:
	@scripts/install-deps.sh soak
	@cmake -S . -B build-test -DCMAKE_BUILD_TYPE=Debug -DUSERSD_SANITIZE=ON >/dev/null
	@cmake --build build-test -j $(JOBS)
	@cd build-test && USERSD_SOAK=1 USERSD_SOAK_ROUNDS=$(SOAK_ROUNDS) ctest --output-on-failure \
		-R '^(http_(sqlite|postgresql)_crash|soak_postgresql_autofailover)$$'

# Every libFuzzer harness (fuzz/) built with clang in build-fuzz/ and run
# FUZZ_SECONDS each under ASan+UBSan (or until FUZZ_RUNS inputs, if set);
# prints the executions per harness (fuzz/README.md).
FUZZ_SECONDS ?= 600
fuzz:
	@scripts/install-deps.sh fuzz
	@CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DUSERSD_SANITIZE=ON \
		-DUSERSD_FUZZ=ON -DUSERSD_TESTS=OFF >/dev/null
	@cmake --build build-fuzz -j $(JOBS) --target fuzz_harnesses
	@FUZZ_RUNS=$(FUZZ_RUNS) fuzz/run.sh build-fuzz $(FUZZ_SECONDS)

# The benchmark suite (bench/run.sh): usersd against nginx on this machine,
# at 1,000 and BENCH_USERS users; writes bench/RESULTS.md (about an hour at
# a million; BENCH_SCENARIOS, BENCH_DBS and BENCH_OUT run a part elsewhere,
# see bench/run.sh).
BENCH_USERS ?= 1000000
bench: build
	@scripts/install-deps.sh bench
	@bench/run.sh $(BENCH_USERS)

# Installs the binary, libusersd.so, usersd.h, usersd.pc, the man page and
# the systemd unit under PREFIX (default /usr/local).
PREFIX ?= /usr/local
install: build
	@cmake --install build --prefix $(PREFIX)

format:
	@clang-format -i include/*.h src/*/*.c src/*/*.h tests/*/*.c tests/*/*.h examples/*.c fuzz/*.c fuzz/*.h

clean:
	rm -rf build build-test build-fuzz
