# The README's two commands.
#   make demo   installs what is missing, builds (release) and runs the demo on a default file
#   make test   the same, then the whole suite: release, asan (ASan+UBSan) and tsan builds,
#               and the examples built as a separate project against the installed package
SHELL := /bin/bash
JOBS ?= $(shell nproc)
DEBIAN_PACKAGES := cmake g++ make pkg-config libboost-dev libboost-atomic-dev libabsl-dev \
                   libxxhash-dev catch2 librapidcheck-dev libbenchmark-dev libcli11-dev \
                   nlohmann-json3-dev liblmdb-dev
DEMO_FILE ?= $(or $(TMPDIR),/tmp)/atomap-demo.atomap
PREFIX_STAGE := $(CURDIR)/build/stage

.PHONY: demo test deps build-% test-% examples clean

deps:
	@missing=$$(for p in $(DEBIAN_PACKAGES); do \
	    dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing: $$missing"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing) >/dev/null || exit 1; \
	  else \
	    echo "missing Debian packages; run:"; echo "  sudo apt-get install -y $$missing"; exit 1; \
	  fi; \
	fi

build-%: deps
	cmake --preset $* >/dev/null
	cmake --build --preset $* -j $(JOBS)

test-%: build-%
	ctest --preset $* -j $(JOBS)

demo: build-release
	build/release/tools/atomap demo --path $(DEMO_FILE)

examples: build-release
	cmake --install build/release --prefix $(PREFIX_STAGE) >/dev/null
	cmake -S examples -B build/examples -DCMAKE_PREFIX_PATH=$(PREFIX_STAGE) -DCMAKE_BUILD_TYPE=Release >/dev/null
	cmake --build build/examples -j $(JOBS)
	ctest --test-dir build/examples --output-on-failure

test: test-release examples test-asan test-tsan
	@echo "make test: release, examples, asan and tsan suites all passed"

clean:
	rm -rf build
