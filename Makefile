# The two commands (see README): `make run` and `make test`. Both install what is missing
# (apt), then build. `make build` leaves the CLI at build/brig.
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?= -DCMAKE_BUILD_TYPE=Release

.PHONY: all deps test-deps configure build run test bench clean

all: build

deps:
	@scripts/install-deps.sh

test-deps:
	@scripts/install-deps.sh --test

configure: deps
	@cmake -S . -B $(BUILD) $(CMAKE_FLAGS) >/dev/null

build: configure
	@cmake --build $(BUILD) -j$(JOBS)

# The main job. Until the server exists (a later issue): run an example in a sandbox.
run: build
	$(BUILD)/brig exec examples/stateful.py

test: test-deps
	@cmake -S . -B $(BUILD) $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS) --timeout 900

bench: build
	bench/run.sh $(BUILD)

clean:
	rm -rf $(BUILD)
