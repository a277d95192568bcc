# Makefile: a thin wrapper over CMake for the README commands.  The build itself is
# CMakeLists.txt; the tests are ctest (tests/tests.cmake).
BUILD ?= build
JOBS  ?= 2
CMAKE_FLAGS ?= -DCMAKE_C_COMPILER=clang -DKILN_WERROR=ON

.PHONY: all deps build demo test test-sanitize test-tsan fuzz bench reference clean

all: build

deps:
	@bash tools/install-deps.sh

build: deps
	@cmake -S . -B $(BUILD) $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

# Compile models/gpt2.yaml at the bundled trained model's size, run it on the reference
# window of text, and compare with the reference logits.
demo: build
	@bash demo/run.sh $(BUILD)

test: build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# The whole suite with AddressSanitizer + UndefinedBehaviorSanitizer, in kiln and in the
# model binaries it builds (needs clang's sanitizer runtimes, libclang-rt-14-dev).
# The differential label (diff) is left out here: it recompiles every case many times over and
# checks numerics, which the plain `make test` covers; everything that parses or runs is in.
test-sanitize: deps
	@cmake -S . -B $(BUILD)-asan $(CMAKE_FLAGS) -DKILN_SANITIZE=address,undefined >/dev/null
	@cmake --build $(BUILD)-asan -j $(JOBS)
	@cd $(BUILD)-asan && ctest --output-on-failure -j $(JOBS) -LE diff

# ThreadSanitizer over what runs threads: the model binaries of the reference cases, each
# running forward on the thread pool with 3 threads, and the C API tests (label tsan), where
# two model instances run in two threads of one process.
test-tsan: deps
	@cmake -S . -B $(BUILD)-tsan $(CMAKE_FLAGS) -DKILN_SANITIZE=thread >/dev/null
	@cmake --build $(BUILD)-tsan -j $(JOBS)
	@cd $(BUILD)-tsan && KILN_NUM_THREADS=3 ctest --output-on-failure -j $(JOBS) -L 'reference|tsan'

# Run every libFuzzer harness for FUZZ_SECONDS (default 60) each; prints executions and coverage.
fuzz: deps
	@bash tests/fuzz/run.sh $(FUZZ_SECONDS)

# Time kiln against PyTorch and ONNX Runtime at real sizes (docs/bench.md).  A benchmark, not a
# test: it reports and never fails on speed.  BENCH_QUICK=1 for a smoke run at small sizes.
bench: build
	@KILN_WITH_BENCH=1 bash tools/install-deps.sh
	@bash bench/run.sh

# Regenerate the committed reference tensors with PyTorch (Debian's python3-torch).
reference:
	@KILN_WITH_TORCH=1 bash tools/install-deps.sh
	@OMP_WAIT_POLICY=passive /usr/bin/python3 tests/reference/make_cases.py
	@OMP_WAIT_POLICY=passive /usr/bin/python3 tests/reference/make_greedy.py
	@OMP_WAIT_POLICY=passive /usr/bin/python3 tests/text/make_fixtures.py

clean:
	rm -rf $(BUILD)
