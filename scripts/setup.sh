#!/usr/bin/env bash
# Create .venv and install Lajur with its test tools; quick when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.lajur-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "Installing Lajur and its dependencies into .venv (log: .venv/pip.log) ..."
  if ! { .venv/bin/python -m pip install --upgrade pip && .venv/bin/python -m pip install -e ".[test]"; } \
      > .venv/pip.log 2>&1; then
    tail -30 .venv/pip.log
    echo "pip install failed; see .venv/pip.log" >&2
    exit 1
  fi
  echo "$want" > "$stamp"
fi
