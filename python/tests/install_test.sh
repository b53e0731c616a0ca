#!/bin/bash
# The installed package: `cmake --install BUILD --component python` into a staged prefix, then
# an import from there alone (not the build tree), and, when the configured prefix is the one a
# user would install to, a check that the interpreter looks where the package goes.
# Usage: install_test.sh BUILD_DIR PYTHON INSTALL_DIR CONFIGURED_PREFIX
set -euo pipefail
build=$1 python=$2 dir=$3 prefix=$4
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
cmake --install "$build" --prefix "$stage" --component python >/dev/null
cd "$stage"
env -u PYTHONPATH PYTHONPATH="$stage/$dir" "$python" - "$stage/$dir" <<'PY'
import os, sys
import atomap
where = sys.argv[1]
assert atomap.__file__.startswith(where), atomap.__file__
for name in ("__init__.py", "__init__.pyi", "py.typed"):
    assert os.path.exists(os.path.join(where, "atomap", name)), name
with atomap.open("install-test", kind="memory") as dom:
    snap = dom.atom("a", key=atomap.STR, value=atomap.U64).swap(lambda tx: tx.set("n", 1))
    assert dict(snap) == {"n": 1}
    snap.close()
print("installed package imports from", where)
PY
case "$dir" in
  /*) target=$dir ;;
  *) target=$prefix/$dir ;;
esac
if [ "$prefix" = /usr/local ] || [ "$prefix" = /usr ]; then
  env -u PYTHONPATH "$python" -c "import sys; assert '$target' in sys.path, sys.path" ||
    { echo "$python does not look in $target"; exit 1; }
  echo "$python looks in $target"
fi
