#!/usr/bin/env bash
# Start Dagster (webserver, daemon, code location) on 127.0.0.1 with the project's instance in
# dagster_home/. The lake is $TICKLAKE_ROOT, else ./lakehouse. Port: $PORT, else 3000.
set -euo pipefail
cd "$(dirname "$0")/.."
export DAGSTER_HOME="$PWD/dagster_home"
exec .venv/bin/dagster dev -h 127.0.0.1 -p "${PORT:-3000}" "$@"
