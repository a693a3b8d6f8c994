#!/usr/bin/env bash
# Runs the whole test suite twice: with the compiled extension, then pure Python
# (UFTPCORE_NO_EXTENSIONS=1).  Any failure, or a run that collects no tests, fails.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python

impl=$($PY -c "import uftpcore; print(uftpcore.IMPLEMENTATION)")
if [ "$impl" != "cython" ]; then
  echo "ci/test.sh: the Cython extension is not built (IMPLEMENTATION=$impl)" >&2
  exit 1
fi

echo "=== test suite, compiled implementation ==="
$PY -m pytest -q -p no:cacheprovider "$@" tests
echo "=== test suite, pure-Python implementation (UFTPCORE_NO_EXTENSIONS=1) ==="
UFTPCORE_NO_EXTENSIONS=1 $PY -m pytest -q -p no:cacheprovider "$@" tests
