#!/usr/bin/env bash
# The layer graph holds (docs/design.md, "Layers"; src/CMakeLists.txt builds it):
#  1. under a layer's include root, a header of a layer below compiles;
#  2. a header of a layer above does not ("No such file or directory");
#  3. no include in src/ or include/ climbs out of its root with "..", which the include roots
#     could not stop (a quoted include is looked up next to its file first).
# Usage: layers_test.sh CXX LAYERS_DIR SOURCE_DIR BINARY_INCLUDE_DIR
set -u
cxx=$1 layers=$2 source=$3 binary_include=$4
failures=0
probe() {  # probe LAYER HEADER: compiles `#include "HEADER"` under LAYER's root; prints errors
  printf '#include "%s"\n' "$2" |
    "$cxx" -std=c++20 -mcx16 -mpopcnt -fsyntax-only -x c++ -I"$layers/$1" -I"$source/include" \
      -I"$binary_include" - 2>&1
}
if ! out=$(probe hamt epoch/retire_list.h); then
  echo "FAIL: hamt cannot include epoch/retire_list.h (a layer below it):"; echo "$out"
  failures=$((failures + 1))
fi
if out=$(probe hamt intent/owned_lane.h); then
  echo "FAIL: hamt includes intent/owned_lane.h (a layer above it) without an error"
  failures=$((failures + 1))
elif ! grep -q 'No such file or directory' <<<"$out"; then
  echo "FAIL: hamt including intent/owned_lane.h failed, but not for want of the file:"; echo "$out"
  failures=$((failures + 1))
fi
if climbs=$(grep -rnE '#include[[:space:]]*"([^"]*/)?\.\./' "$source/src" "$source/include"); then
  echo "FAIL: includes that climb out of their root:"; echo "$climbs"
  failures=$((failures + 1))
fi
[ "$failures" = 0 ] && echo "layers: the graph holds (below visible, above refused, no '..')"
exit $((failures > 0))
