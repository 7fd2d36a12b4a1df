#!/usr/bin/env bash
# Make sure a headless browser is available for the Dagster UI test: Debian's chromium, installed
# with apt-get when missing and running as root. A no-op when chromium is already there. Never
# fails: without a browser the UI test fails with its own clear message.
set -uo pipefail

for name in chromium chromium-browser; do
  if command -v "$name" >/dev/null; then
    exit 0
  fi
done

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  log="${TMPDIR:-/tmp}/ticklake-apt-chromium.log"
  echo "browser: installing chromium with apt-get (about 30 seconds)" >&2
  if { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } >"$log" 2>&1; then
    exit 0
  fi
  echo "browser: 'apt-get install chromium' failed (log: $log); the Dagster UI test will fail" >&2
else
  echo "browser: chromium not found; install it (Debian: 'apt-get install chromium') or the Dagster UI test will fail" >&2
fi
exit 0
