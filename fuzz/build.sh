#!/bin/sh
# Builds the libFuzzer target with clang (libFuzzer + ASan + UBSan) into build/fuzz, and runs it.
#   fuzz/build.sh                 build only
#   fuzz/build.sh run SECONDS     build, then fuzz for SECONDS over a copy of tests/fuzz_corpus
# A crashing input is written to build/fuzz/crash-*: copy it into tests/fuzz_corpus/ so that
# tests/fuzz_replay_test.cc replays it in every build from then on.
set -e
cd "$(dirname "$0")/.."
B=build/fuzz
SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -g -O1"
cmake -S . -B $B -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_CXX_FLAGS="$SAN -fsanitize=fuzzer-no-link" -DATOMAP_BUILD_TESTS=OFF \
  -DATOMAP_BUILD_BENCH=OFF -DATOMAP_BUILD_TOOLS=OFF >/dev/null
cmake --build $B --target atomap -j "${JOBS:-2}"
clang++ -std=c++20 -mcx16 $SAN -fsanitize=fuzzer -I. -Iinclude -Isrc fuzz/fuzz_domain_file.cc \
  $B/src/libatomap.a -o $B/fuzz_domain_file \
  $(pkg-config --libs absl_status absl_statusor absl_str_format absl_strings absl_time absl_flat_hash_map absl_flat_hash_set) \
  -lboost_atomic -lxxhash -lpthread
if [ "$1" = run ]; then
  rm -rf $B/corpus && cp -r tests/fuzz_corpus $B/corpus
  cd $B && ./fuzz_domain_file -max_total_time="${2:-60}" -max_len=131072 -timeout=20 corpus
fi
