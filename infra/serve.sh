#!/usr/bin/env bash
# Start `ticklake serve` for local use: Flight SQL on 127.0.0.1:${FLIGHT_PORT:-31337}, line protocol
# and JSON Lines over HTTP on 127.0.0.1:${HTTP_PORT:-9000}, over $TICKLAKE_ROOT (else ./lakehouse).
# Tokens: $TICKLAKE_SERVE_TOKENS (read:TOKEN,write:TOKEN), or a tokens file given as --tokens FILE;
# with neither, a token of each role is made for this run and printed once (never written anywhere).
# Extra arguments go to `ticklake serve`. Stops on Ctrl-C or SIGTERM (ingest in flight made durable first).
set -euo pipefail
cd "$(dirname "$0")/.."
bash infra/setup.sh
if [ -z "${TICKLAKE_SERVE_TOKENS:-}" ] && [[ " $* " != *" --tokens "* ]]; then
  read_token=$(.venv/bin/python -c "import secrets; print(secrets.token_urlsafe(24))")
  write_token=$(.venv/bin/python -c "import secrets; print(secrets.token_urlsafe(24))")
  export TICKLAKE_SERVE_TOKENS="read:$read_token,write:$write_token"
  echo "serve: tokens for this run: read $read_token, write $write_token" >&2
fi
exec .venv/bin/ticklake serve --flight "127.0.0.1:${FLIGHT_PORT:-31337}" --http "127.0.0.1:${HTTP_PORT:-9000}" "$@"
