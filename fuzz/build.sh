#!/usr/bin/env bash
# Builds the libFuzzer target with clang (libFuzzer + ASan + UBSan) into build/fuzz, and runs it.
#   fuzz/build.sh                          build only (incremental: configures once, relinks the
#                                          fuzzer only when the library or fuzz/ changed)
#   fuzz/build.sh run SECONDS [FLAGS...]   build, then fuzz for SECONDS over a fresh copy of
#                                          tests/fuzz_corpus (extra FLAGS go to libFuzzer, e.g.
#                                          -fork=1 -ignore_crashes=1 for a long unattended run)
# Needs Debian's clang and libclang-rt-14-dev (`make fuzz-smoke` installs them); `make fuzz-smoke`
# is `fuzz/build.sh run 60`, the last step of `make test`.
#
# Exit status: libFuzzer's. Any crash, sanitizer report (UBSan too: -fno-sanitize-recover=all),
# timeout (-timeout=20 s per input) or out-of-memory is non-zero, and the input that caused it is
# written to build/fuzz/crash-* (or timeout-*, oom-*, leak-*), whose paths are printed at the end:
# copy it into tests/fuzz_corpus/ so that tests/fuzz_replay_test.cc replays it in every build from
# then on.
#
# The corpus is generated, never edited by hand: after a change to the file format (or to what the
# seed should hold) rebuild the release CLI and regenerate it with
#   cmake --preset release && cmake --build --preset release -j2 --target atomap_tool
#   python3 fuzz/make_corpus.py build/release/tools/atomap tests/fuzz_corpus
# (deterministic; it rewrites the generated files and leaves crash-* inputs alone).
set -eu
cd "$(dirname "$0")/.."
B=build/fuzz
SAN="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -g -O1"
CXXFLAGS_LIB="$SAN -fsanitize=fuzzer-no-link"
# Configure once (and again if the flags above changed, or an earlier configure failed half-way:
# a cache without a Makefile); the build below is incremental.
if ! grep -qxF "CMAKE_CXX_FLAGS:STRING=$CXXFLAGS_LIB" $B/CMakeCache.txt 2>/dev/null ||
   [ ! -f $B/Makefile ]; then
  cmake -S . -B $B -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
    -DCMAKE_CXX_FLAGS="$CXXFLAGS_LIB" -DATOMAP_BUILD_TESTS=OFF \
    -DATOMAP_BUILD_BENCH=OFF -DATOMAP_BUILD_TOOLS=OFF -DATOMAP_BUILD_PYTHON=OFF >/dev/null
fi
cmake --build $B --target atomap -j "${JOBS:-2}"
FUZZER=$B/fuzz_domain_file
if [ ! -x $FUZZER ] || [ $B/src/libatomap.a -nt $FUZZER ] || [ fuzz/fuzz_domain_file.cc -nt $FUZZER ] ||
   [ fuzz/fuzz_domain_file.h -nt $FUZZER ] || [ fuzz/build.sh -nt $FUZZER ]; then
  echo "linking $FUZZER"
  clang++ -std=c++20 -mcx16 -mpopcnt $SAN -fsanitize=fuzzer -I. -Iinclude -I$B/include -Isrc fuzz/fuzz_domain_file.cc \
    $B/src/libatomap.a -o $FUZZER \
    $(pkg-config --libs absl_status absl_statusor absl_str_format absl_strings absl_time absl_flat_hash_map absl_flat_hash_set) \
    -lboost_atomic -lxxhash -lpthread
fi
[ "${1:-}" = run ] || exit 0
SECONDS_TO_RUN="${2:-60}"
if [ $# -ge 2 ]; then shift 2; else shift $#; fi
# A private working copy of the corpus per run, so that runs can overlap and the committed corpus
# is never touched; crash inputs go to build/fuzz/ itself.
WORK=$(mktemp -d "$PWD/$B/run.XXXXXX")
STAMP=$(mktemp "$PWD/$B/started.XXXXXX")  # inputs written after it are this run's
cp tests/fuzz_corpus/* "$WORK/"
rc=0
# UBSan's report names only the line: ask for the stack too (the caller's setting wins).
UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1}" \
"$PWD/$FUZZER" -max_total_time="$SECONDS_TO_RUN" -max_len=131072 -timeout=20 \
  -artifact_prefix="$PWD/$B/" "$@" "$WORK" || rc=$?
if [ $rc -ne 0 ]; then
  echo "fuzz/build.sh: libFuzzer exited $rc: crash, sanitizer report, timeout or out-of-memory." >&2
  found=$(find "$B" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' \
          -o -name 'leak-*' -o -name 'slow-unit-*' \) -newer "$STAMP" | sort)
  if [ -n "$found" ]; then
    echo "fuzz/build.sh: the input(s) that did it (replay: $FUZZER FILE; keep: copy into tests/fuzz_corpus/):" >&2
    for f in $found; do echo "  $PWD/$f" >&2; done
  fi
  echo "fuzz/build.sh: the run's corpus is kept in $WORK" >&2
  rm -f "$STAMP"
  exit $rc
fi
rm -rf "$WORK" "$STAMP"
echo "fuzz/build.sh: $SECONDS_TO_RUN s of fuzzing, no crash and no sanitizer report"
