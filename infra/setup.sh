#!/usr/bin/env bash
# Set up everything ticklake needs on a fresh machine: a virtualenv in .venv with the project
# (editable) and its test dependencies, DuckDB extensions included (they come as PyPI wheels).
# Idempotent: re-runs only reinstall when pyproject.toml changed.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if ! command -v "$PYTHON" >/dev/null; then
  echo "setup: $PYTHON not found; install Python 3.11 or newer" >&2
  exit 1
fi

if [ ! -x .venv/bin/python ]; then
  if ! "$PYTHON" -m venv .venv 2>/dev/null; then
    # Debian ships venv support separately.
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      echo "setup: installing python3-venv with apt-get" >&2
      apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
      rm -rf .venv
      "$PYTHON" -m venv .venv
    else
      echo "setup: '$PYTHON -m venv' failed; install your distribution's python3-venv package" >&2
      exit 1
    fi
  fi
fi

stamp=.venv/.ticklake-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "setup: installing ticklake and its dependencies into .venv (about 2 minutes the first time)" >&2
  for args in "--upgrade pip" "-e .[test]"; do
    # shellcheck disable=SC2086
    if ! .venv/bin/python -m pip install --disable-pip-version-check $args >.venv/pip.log 2>&1; then
      grep -v "^WARNING: Location" .venv/pip.log >&2
      echo "setup: pip install $args failed (log: .venv/pip.log)" >&2
      exit 1
    fi
  done
  .venv/bin/python -c "import ticklake, ticklake.catalog, duckdb, pyarrow, dagster" # fails loudly if the install did
  touch "$stamp"
fi
