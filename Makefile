# The README's two commands.
#   make demo   installs what is missing, builds (release) and runs the demo on a default file
#   make test   the same, then the whole suite: first the format check (`make format-check`),
#               then release, asan (ASan+UBSan) and tsan builds,
#               the examples built as a separate project against the installed package, the
#               three ways of consuming the package (`make consumers`), and
#               last a 60 s libFuzzer smoke run (`make fuzz-smoke`, clang; see fuzz/build.sh)
#   make format        formats the project's C and C++ files in place with clang-format-19 (.clang-format)
#   make format-check  lists the files `make format` would change, and fails if there are any
SHELL := /bin/bash
JOBS ?= $(shell nproc)
DEBIAN_PACKAGES := cmake g++ make pkg-config libboost-dev libboost-atomic-dev libabsl-dev \
                   libxxhash-dev catch2 librapidcheck-dev libbenchmark-dev libcli11-dev \
                   nlohmann-json3-dev liblmdb-dev \
                   pybind11-dev python3-pybind11 python3-dev python3-pytest python3-lmdb \
                   nats-server libnats-dev
# Only the fuzz smoke needs these (clang++ and libFuzzer's, ASan's and UBSan's runtimes for clang);
# `make demo` never installs them.
FUZZ_PACKAGES := clang libclang-rt-14-dev
FUZZ_SECONDS ?= 60
# clang-format is pinned to one major version: others lay the same code out differently.
FORMAT_PACKAGES := clang-format-19
CLANG_FORMAT := clang-format-19
FORMAT_DIRS := src include tools tests bench stress examples fuzz python/src python/tests
FORMAT_FILES = $(shell find $(FORMAT_DIRS) -type f \( -name '*.h' -o -name '*.c' -o -name '*.cc' -o -name '*.cpp' \) | sort)
DEMO_FILE ?= $(or $(TMPDIR),/tmp)/atomap-demo.atomap
PREFIX_STAGE := $(CURDIR)/build/stage

.PHONY: demo test deps fuzz-deps fuzz-smoke format-deps format format-check build-% test-% stage \
        examples consumers clean

# $(call install-missing,PACKAGES): apt-get installs those not installed (root), or says how to.
define install-missing
	@missing=$$(for p in $(1); do \
	    dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing: $$missing"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing) >/dev/null || exit 1; \
	  else \
	    echo "missing Debian packages; run:"; echo "  sudo apt-get install -y $$missing"; exit 1; \
	  fi; \
	fi
endef

deps:
	$(call install-missing,$(DEBIAN_PACKAGES))

fuzz-deps: deps
	$(call install-missing,$(FUZZ_PACKAGES))

format-deps:
	$(call install-missing,$(FORMAT_PACKAGES))

format: format-deps
	@$(CLANG_FORMAT) -i --style=file $(FORMAT_FILES)
	@echo "format: $(words $(FORMAT_FILES)) files formatted with $$($(CLANG_FORMAT) --version)"

# A file is listed if formatting would change it, or if clang-format fails on it.
format-check: format-deps
	@set -o pipefail; bad=$$(for f in $(FORMAT_FILES); do \
	    $(CLANG_FORMAT) --style=file "$$f" | cmp -s - "$$f" || echo "$$f"; done); \
	if [ -n "$$bad" ]; then \
	  echo "not formatted as .clang-format says (run make format):"; printf '  %s\n' $$bad; exit 1; \
	fi; \
	echo "format-check: $(words $(FORMAT_FILES)) files formatted"

# Builds the library with clang + libFuzzer + ASan + UBSan in build/fuzz (incrementally) and fuzzes
# for FUZZ_SECONDS over a copy of tests/fuzz_corpus. Fails on any crash or sanitizer report and
# prints the path of the input that caused it (build/fuzz/crash-*).
fuzz-smoke: fuzz-deps
	JOBS=$(JOBS) bash fuzz/build.sh run $(FUZZ_SECONDS)

build-%: deps
	cmake --preset $* >/dev/null
	cmake --build --preset $* -j $(JOBS)

test-%: build-%
	ctest --preset $* -j $(JOBS)

demo: build-release
	build/release/tools/atomap demo --path $(DEMO_FILE)

# The release build installed into build/stage, as a user would install it.
stage: build-release
	cmake --install build/release --prefix $(PREFIX_STAGE) >/dev/null

examples: stage
	cmake -S examples -B build/examples -DCMAKE_PREFIX_PATH=$(PREFIX_STAGE) -DCMAKE_BUILD_TYPE=Release >/dev/null
	cmake --build build/examples -j $(JOBS)
	ctest --test-dir build/examples --output-on-failure

# find_package, pkg-config and add_subdirectory consumers (tests/consumers/run.sh).
consumers: stage
	JOBS=$(JOBS) tests/consumers/run.sh . $(PREFIX_STAGE) build/consumers

# The fuzz smoke runs after the other suites, also under make -j.
test: format-check test-release examples consumers test-asan test-tsan
	$(MAKE) --no-print-directory fuzz-smoke
	@echo "make test: format, release, examples, consumers, asan and tsan suites and the $(FUZZ_SECONDS) s fuzz smoke all passed"

clean:
	rm -rf build
