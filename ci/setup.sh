#!/usr/bin/env bash
# Sets up everything the project needs on a fresh machine: system packages (fuse3/libfuse for
# FUSE mounts, curl as the benchmark reference), a virtual environment in .venv, and the
# project installed in editable mode with its Cython extension compiled.
set -euo pipefail
cd "$(dirname "$0")/.."

if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  missing=""
  for pkg in fuse3 libfuse3-dev libfuse2 curl; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing="$missing $pkg"
  done
  if [ -n "$missing" ]; then
    echo "ci/setup.sh: installing system packages:$missing"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
  fi
else
  echo "ci/setup.sh: not root or no apt-get: fuse3/libfuse/curl must already be installed" >&2
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip "setuptools>=77,<82" wheel "Cython>=3.0"
.venv/bin/python -m pip install -q --no-build-isolation -e ".[dev,fsspec,fs,fuse,progress]"
.venv/bin/python -c "import uftpcore; print('uftpcore implementation:', uftpcore.IMPLEMENTATION)"
