# The two commands of the README: `make run` and `make test`.
BUILD ?= build
DATA ?= annals-data
DEMO_DATA ?= annals-demo
LISTEN ?= 127.0.0.1:7070
ARGS ?=
JOBS ?= $(shell nproc)
# The release tree's tests wait on servers, fsyncs and child processes
# more than they compute (one core's worth of CPU at -j2 on 2 cores): they
# run two per core, 161 -> 86-91 s on 2 cores. The sanitizer trees' tests
# are CPU-bound and run one per core.
TEST_JOBS ?= $(shell echo $$(( $(JOBS) * 2 )))
# The tests of the parts that share state between threads: the ledger's
# sequence/integrate/publish threads, the ingestor, the change feed, the
# projection and enrichment cache, the authorizer.
TSAN_TESTS = log_test ledger_test ingest_test stream_test state_test auth_test
# A new build tree uses Ninja: it starts a target's compiles without waiting
# for the libraries it links, so both cores stay busy (a clean release build
# on 2 cores: 492 s with CMake's Makefiles, 418 s with Ninja). A tree made
# earlier keeps the generator it was made with.
GENERATOR = $(if $(wildcard $(1)/CMakeCache.txt),,-G Ninja)

.PHONY: deps deps-test configure build run test unit fuzz bench bench-pg clean format tidy dist image demo

deps:
	@sh scripts/deps.sh

deps-test:
	@sh scripts/deps.sh test

# `build` and `run` compile only the two binaries (a few minutes on 2
# cores); the tests and benchmarks are built by `test` and `bench`.
# The release tree builds no unit tests: `make test` runs them under the
# sanitizers (CMakeLists.txt, ANNALS_UNIT_TESTS). RELEASE_UNIT_TESTS=ON
# builds them there too (then `make test` runs them there as well).
RELEASE_UNIT_TESTS ?= OFF
configure: deps
	@cmake -S . -B $(BUILD) $(call GENERATOR,$(BUILD)) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DANNALS_UNIT_TESTS=$(RELEASE_UNIT_TESTS) >/dev/null

build: configure
	@echo "make: building annals and kubectl-audit into $(BUILD)/ with $(JOBS) jobs"
	@cmake --build $(BUILD) -j$(JOBS) --target annals kubectl-audit

# Release archives and the krew manifest (scripts/dist.sh) in dist/.
VERSION ?= 0.1.0
dist: build
	@sh scripts/dist.sh $(BUILD) dist $(VERSION)

# An OCI image built with buildah from the binaries and their libraries
# alone (scripts/image.sh): no base image is pulled.
IMAGE ?= localhost/annals:latest
image: build
	@sh scripts/image.sh $(BUILD) $(IMAGE)

# `make run` with the demo's real audit events loaded (annals serve --demo),
# on its own data directory so that the demo's events stay out of `make
# run`'s ledger (whose README examples start from an empty log).
demo: build
	$(BUILD)/annals serve --data $(DEMO_DATA) --listen $(LISTEN) --demo $(ARGS)

# ARGS: more serve flags, e.g. make run ARGS="--tcp-listen 127.0.0.1:7071".
run: build
	$(BUILD)/annals serve --data $(DATA) --listen $(LISTEN) $(ARGS)

# Whole suite: integration tests of the release build, then the
# ASan+UBSan unit tests and SIGTERM-under-load test, the ThreadSanitizer
# tests of the concurrent parts, and the libFuzzer targets (briefly), all
# via ctest. The three sanitizer builds use clang: at -O0 with ASan and
# UBSan it compiled this code in half of g++'s time (3.2 against 6.9 min
# on 2 cores); g++ builds the release tree.
test: deps-test configure
	@echo "make: building the binaries, integration tests and benchmarks into $(BUILD)/"
	@cmake --build $(BUILD) -j$(JOBS)
	@echo "make: building the libFuzzer targets (clang, ASan+UBSan) into $(BUILD)-fuzz/"
	@cmake -S . -B $(BUILD)-fuzz $(call GENERATOR,$(BUILD)-fuzz) -DANNALS_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD)-fuzz -j$(JOBS)
	@echo "make: building the unit tests and the server with ASan+UBSan (clang) into $(BUILD)-asan/"
	@cmake -S . -B $(BUILD)-asan $(call GENERATOR,$(BUILD)-asan) -DANNALS_SANITIZE=ON -DANNALS_SERVER=ON -DANNALS_INTEGRATION=OFF -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=Debug >/dev/null
	@cmake --build $(BUILD)-asan -j$(JOBS)
	@echo "make: building the concurrent parts' tests with ThreadSanitizer (clang) into $(BUILD)-tsan/"
	@cmake -S . -B $(BUILD)-tsan $(call GENERATOR,$(BUILD)-tsan) -DANNALS_TSAN=ON -DANNALS_INTEGRATION=OFF -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD)-tsan -j$(JOBS) --target $(TSAN_TESTS)
	cd $(BUILD) && ctest --output-on-failure -j$(TEST_JOBS)
	cd $(BUILD)-asan && ctest --output-on-failure -j$(JOBS)
	cd $(BUILD)-tsan && TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$(CURDIR)/test/tsan.supp" ctest --output-on-failure -j$(JOBS) -R '^($(subst $(eval) ,|,$(TSAN_TESTS))|thread_safety_analysis_is_on)$$'
	cd $(BUILD)-fuzz && ctest --output-on-failure -j$(JOBS)

bench: configure
	@cmake --build $(BUILD) -j$(JOBS)
	$(BUILD)/bench/ledger_bench
	$(BUILD)/bench/tls_bench

# annals against PostgreSQL 15 with a hash-chained table, alternated rounds
# (bench/side_by_side.sh; ../shared/bench installs PostgreSQL from Debian).
bench-pg: configure
	@cmake --build $(BUILD) -j$(JOBS) --target annals
	ANNALS=$(BUILD)/annals bench/side_by_side.sh

# .clang-format on the C++ files changed since main (or FILES=...).
FILES ?= $(shell git diff --name-only --diff-filter=AM main -- '*.cc' '*.h' 2>/dev/null)
format:
	@test -z "$(FILES)" || clang-format -i $(FILES)

# .clang-tidy over those files, with the release build's compile commands.
tidy: configure
	@test -z "$(filter %.cc,$(FILES))" || clang-tidy -p $(BUILD) --quiet $(filter %.cc,$(FILES))

clean:
	rm -rf $(BUILD) $(BUILD)-fuzz $(BUILD)-asan $(BUILD)-tsan
