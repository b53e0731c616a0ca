#!/usr/bin/env bash
# libatomap_c.so exports the C API and nothing else (src/capi/exports.map): every defined
# dynamic symbol is an atomap_* function of include/atomap/c.h, and every function c.h declares
# is exported (nm lists the version node itself as an absolute symbol, "A ATOMAP_C_1"); its soname
# is SONAME, and it needs no libatomap (the C++ library is linked in).
# Usage: c_api_exports_test.sh LIBATOMAP_C HEADER SONAME
set -euo pipefail
lib=$1 header=$2 soname=$3
dynamic=$(readelf -d "$lib")
grep -qF "Library soname: [$soname]" <<<"$dynamic" || {
  echo "FAIL: $lib's soname is not $soname:"; grep -i soname <<<"$dynamic"; exit 1; }
if grep -E 'NEEDED.*\[libatomap[._]' <<<"$dynamic"; then
  echo "FAIL: $lib needs another atomap library"; exit 1
fi
exported=$(nm -D --defined-only "$lib" | awk '$2 != "A" { sub(/@.*/, "", $3); print $3 }' | sort -u)
[ -n "$exported" ] || { echo "FAIL: $lib exports nothing"; exit 1; }
if stray=$(grep -v '^atomap_' <<<"$exported"); then
  echo "FAIL: $lib exports symbols outside the C API:"; echo "$stray"; exit 1
fi
# The functions c.h declares: `type atomap_name(` at the start of a declaration.
declared=$(grep -oE '^[a-z_][a-z0-9_ *]*[ *]atomap_[a-z0-9_]+\(' "$header" |
           grep -oE 'atomap_[a-z0-9_]+\($' | tr -d '(' | sort -u)
if missing=$(comm -23 <(echo "$declared") <(echo "$exported") | grep .); then
  echo "FAIL: declared in $header but not exported by $lib:"; echo "$missing"; exit 1
fi
if extra=$(comm -13 <(echo "$declared") <(echo "$exported") | grep .); then
  echo "FAIL: exported by $lib but not declared in $header:"; echo "$extra"; exit 1
fi
echo "exports: $(wc -l <<<"$exported") atomap_* functions, exactly those c.h declares; soname $soname"
