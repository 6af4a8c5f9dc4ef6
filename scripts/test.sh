#!/usr/bin/env bash
# Run the whole test suite, browser tests included. Installs what pip cannot: a Chromium for Playwright.
set -euo pipefail
cd "$(dirname "$0")/.."

find_chromium() {
  for candidate in "${CHROMIUM_PATH:-}" /usr/bin/chromium /usr/lib/chromium/chromium /usr/bin/chromium-browser; do
    if [ -n "$candidate" ] && [ -x "$candidate" ]; then echo "$candidate"; return 0; fi
  done
  return 1
}

if ! find_chromium >/dev/null; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    echo "== installing Debian's chromium for the browser tests"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "No Chromium found. Install one (Debian/Ubuntu: 'sudo apt-get install chromium') or set CHROMIUM_PATH," >&2
    echo "then run this script again. The browser tests need it." >&2
    exit 1
  fi
fi
export CHROMIUM_PATH="$(find_chromium)"

ruff check .
ruff format --check .
if [ "$#" -gt 0 ]; then  # a chosen selection: run it as given
  exec python -m pytest "$@"
fi
# The model and app tests in parallel, one worker per core (at most 4; each test trains on one torch thread), then
# the browser tests one at a time: they time a live page and must not share its cores with other tests.
workers="$(python -c 'import os; print(max(1, min(4, os.cpu_count() or 1)))')"
python -m pytest -m "not browser" -n "$workers"
python -m pytest -m browser
