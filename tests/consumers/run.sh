#!/usr/bin/env bash
# The three ways an outside project consumes atomap, each built and run (make consumers):
#   (a) find_package(atomap 0.4 CONFIG) of the install in STAGE, without CMAKE_CXX_STANDARD;
#   (b) a plain g++ line with `pkg-config --cflags --libs atomap` of that install (its prefix is
#       STAGE, not where the build was configured to go);
#   (c) add_subdirectory of the source tree, which must define none of its tests, tools or
#       benchmarks (subdirectory/CMakeLists.txt fails the configure if it does);
#   (d) the C API from C: consumer.c built with a plain `cc -std=c99 -pedantic` line and
#       `pkg-config --cflags --libs atomap-c` (no C++ flag, no abseil), and with CMake's
#       atomap::atomap_c in (a).
# Each C++ consumer compiles the README's "In code" block as written, and each C consumer its
# "From C" block (both extracted below).
# Usage: tests/consumers/run.sh SOURCE_DIR STAGE_PREFIX WORK_DIR
set -euo pipefail
SRC=$(realpath "$1")
STAGE=$(realpath "$2")
WORK=$(realpath -m "$3")
HERE="$SRC/tests/consumers"
JOBS="${JOBS:-2}"
mkdir -p "$WORK/gen"

# The README's first ```cpp block after "## In code": its #include lines at the top, the rest as
# the body of a function (the block's statements `return` a Status).
awk '
  /^## In code/ { section = 1; next }
  section && /^```cpp/ { inside = 1; next }
  inside && /^```/ { exit }
  inside && /^#include/ { print; next }
  inside { body = body "  " $0 "\n" }
  END {
    if (body == "") { print "#error README.md has no ```cpp block under ## In code"; exit }
    printf "absl::Status ReadmeExample() {\n%s  return absl::OkStatus();\n}\n", body
  }' "$SRC/README.md" > "$WORK/gen/readme_example.inc"

# The README's first ```c block after "### From C": its #include lines and `static` functions (to
# their closing "}" at column 0) at file scope, the rest as the body of a function that returns
# an int (the block's statements `return 1` on failure).
awk '
  /^### From C/ { section = 1; next }
  section && /^```c$/ { inside = 1; next }
  inside && /^```/ { exit }
  inside && infunc { print; if ($0 ~ /^}/) infunc = 0; next }
  inside && /^static / { infunc = 1; print; next }
  inside && /^#include/ { print; next }
  inside { body = body "  " $0 "\n" }
  END {
    if (body == "") { print "#error README.md has no ```c block under ### From C"; exit }
    printf "int ReadmeExampleC(void) {\n%s  return 0;\n}\n", body
  }' "$SRC/README.md" > "$WORK/gen/readme_example_c.inc"

run_consumer() {  # NAME BINARY: runs it on a fresh file in WORK
  rm -f "$WORK/$1.atomap"
  "$2" "$WORK/$1.atomap"
  echo "consumers: ($1) ok"
}

# (a)
cmake -S "$HERE/find_package" -B "$WORK/find_package" -DCMAKE_PREFIX_PATH="$STAGE" \
  -DCMAKE_BUILD_TYPE=Release -DATOMAP_EXAMPLE_DIR="$WORK/gen" >/dev/null
cmake --build "$WORK/find_package" -j "$JOBS" >/dev/null
run_consumer find_package "$WORK/find_package/consumer"
run_consumer find_package_c "$WORK/find_package/c_consumer"

# (b): no -std, no -I of our own: pkg-config must bring them.
PC="$STAGE/lib/pkgconfig"
[ -d "$PC" ] || PC=$(dirname "$(find "$STAGE" -name atomap.pc | head -n 1)")
flags=$(PKG_CONFIG_PATH="$PC" pkg-config --cflags --libs atomap)
case "$flags" in
  *"$STAGE"*|*"$PC/../.."*) ;;
  *) echo "consumers: pkg-config's flags do not name the staged prefix $STAGE: $flags" >&2; exit 1 ;;
esac
g++ -O1 -I"$WORK/gen" "$HERE/consumer.cc" $flags -o "$WORK/pkg_config_consumer"
run_consumer pkg_config "$WORK/pkg_config_consumer"

# (d): C99, and nothing of C++ or abseil on the line: libatomap_c.so carries them itself.
cflags=$(PKG_CONFIG_PATH="$PC" pkg-config --cflags --libs atomap-c)
case "$cflags" in
  *absl*|*c++*|*-latomap\ *|*-latomap) echo "consumers: atomap-c's flags name more than libatomap_c: $cflags" >&2; exit 1 ;;
  *"$STAGE"*|*"$PC/../.."*) ;;
  *) echo "consumers: atomap-c's flags do not name the staged prefix $STAGE: $cflags" >&2; exit 1 ;;
esac
libdir=$(PKG_CONFIG_PATH="$PC" pkg-config --variable=libdir atomap-c)
cc -std=c99 -pedantic -Wall -Werror -O1 -I"$WORK/gen" "$HERE/consumer.c" $cflags \
  -Wl,-rpath,"$libdir" -o "$WORK/pkg_config_c_consumer"
run_consumer pkg_config_c "$WORK/pkg_config_c_consumer"

# (c): only the consumer targets (and so the libraries) are built, at -O0 to keep it short.
cmake -S "$HERE/subdirectory" -B "$WORK/subdirectory" -DATOMAP_SOURCE_DIR="$SRC" \
  -DCMAKE_BUILD_TYPE=Debug -DATOMAP_EXAMPLE_DIR="$WORK/gen" >/dev/null
cmake --build "$WORK/subdirectory" --target consumer c_consumer -j "$JOBS" >/dev/null
run_consumer subdirectory "$WORK/subdirectory/consumer"
run_consumer subdirectory_c "$WORK/subdirectory/c_consumer"
