# The two commands (see README): `make run` and `make test`. Both install what is missing
# (apt), then build. `make build` leaves the CLI at build/brig.
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?= -DCMAKE_BUILD_TYPE=Release

# Sanitizers and fuzzing (docs/fuzzing.md): clang-19, each in a build directory of its own.
SANITIZE_BUILD ?= build-sanitize
FUZZ_BUILD ?= build-fuzz
# Seconds per fuzz target; FUZZ_TARGETS (e.g. "vfs wasi") picks some; FUZZ_GUEST=OFF leaves
# out the two targets that link the guest (snapshot, image), which need the guest build.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?=
FUZZ_GUEST ?= ON
CLANG_FLAGS = -DCMAKE_C_COMPILER=clang-19 -DCMAKE_CXX_COMPILER=clang++-19 -DCMAKE_BUILD_TYPE=RelWithDebInfo

.PHONY: all deps test-deps configure build run test bench clean test-sanitize fuzz pytests

all: build

deps:
	@scripts/install-deps.sh

test-deps:
	@scripts/install-deps.sh --test

configure: deps
	@cmake -S . -B $(BUILD) $(CMAKE_FLAGS) >/dev/null

build: configure
	@cmake --build $(BUILD) -j$(JOBS)

# The main job: the HTTP server on 127.0.0.1:8080 with the embedded SQLite store (README).
LISTEN ?= 127.0.0.1:8080
run: build
	$(BUILD)/brig serve --listen $(LISTEN)

test: test-deps
	@cmake -S . -B $(BUILD) $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS) --timeout 900

# AddressSanitizer + UBSan over the host-only libraries and their tests (no guest).
test-sanitize:
	@scripts/install-deps.sh --test --sanitize
	@cmake -S . -B $(SANITIZE_BUILD) $(CLANG_FLAGS) -DBRIG_WITH_GUEST=OFF -DBRIG_SANITIZE=ON >/dev/null
	@cmake --build $(SANITIZE_BUILD) -j$(JOBS)
	cd $(SANITIZE_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --output-on-failure -j$(JOBS) --timeout 900

# Builds the libFuzzer targets and runs each for FUZZ_SECONDS; fails if one crashes.
fuzz:
	@scripts/install-deps.sh --sanitize
	@cmake -S . -B $(FUZZ_BUILD) $(CLANG_FLAGS) -DBRIG_FUZZ=ON -DBRIG_WITH_GUEST=$(FUZZ_GUEST) >/dev/null
	@cmake --build $(FUZZ_BUILD) -j$(JOBS) --target fuzz_targets
	FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/fuzz.sh $(FUZZ_BUILD) $(FUZZ_TARGETS)

# CPython's own Lib/test modules (tests/pytests/modules.txt) in brig and natively, compared
# (README). PYTESTS_FLAGS e.g. "--modules test_json,test_re --json out.json".
PYTESTS_FLAGS ?=
pytests: build
	/usr/bin/python3.11 tests/pytests/harness.py --build $(BUILD) --jobs 2 $(PYTESTS_FLAGS)

bench: build
	bench/run.sh $(BUILD)

clean:
	rm -rf $(BUILD) $(SANITIZE_BUILD) $(FUZZ_BUILD)
