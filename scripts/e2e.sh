#!/usr/bin/env bash
# The browser tests: starts a demo with a 5-second idle timeout and a 3-second
# warning on a free port, once with the password login and once with single
# sign-on (--login sso), and drives its page and the browser client in
# headless Chromium (e2e/demo.test.mjs, playwright-core with the system
# Chromium).
#
# Usage: scripts/e2e.sh [DEMO_BINARY] [password|sso ...]
#        (default: axum-demo, both logins)
# Needs chromium, node and npm (scripts/test.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."

demo=${1:-axum-demo}
shift || true
modes=("$@")
[ ${#modes[@]} -gt 0 ] || modes=(password sso)
fail() { printf 'error: %s\n' "$*" >&2; exit 1; }

chromium=${CHROMIUM:-/usr/bin/chromium}
[ -x "$chromium" ] || fail "Chromium is missing at $chromium: install the Debian package chromium (apt-get install chromium) or set CHROMIUM"
command -v node >/dev/null 2>&1 || fail "node is missing: install the Debian packages nodejs and npm"
command -v npm >/dev/null 2>&1 || fail "npm is missing: install the Debian package npm"

if [ ! -d e2e/node_modules/playwright-core ] || [ e2e/package-lock.json -nt e2e/node_modules/.package-lock.json ]; then
  (cd e2e && npm ci --no-audit --no-fund --loglevel=error) \
    || fail "npm ci in e2e/ failed: it needs the npm registry to fetch playwright-core"
fi

cargo build --locked --quiet -p examples --bin "$demo"

server=""
log=$(mktemp)
trap '[ -n "$server" ] && kill $server 2>/dev/null; rm -f "$log"' EXIT

for mode in "${modes[@]}"; do
  : >"$log"
  "target/debug/$demo" --port 0 --timeout-seconds 5 --warn-seconds 3 --login "$mode" >"$log" 2>&1 &
  server=$!
  url=""
  for _ in $(seq 1 100); do
    url=$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$log" | head -n 1 || true)
    [ -n "$url" ] && break
    kill -0 $server 2>/dev/null || { cat "$log" >&2; fail "$demo exited before serving"; }
    sleep 0.1
  done
  [ -n "$url" ] || { cat "$log" >&2; fail "$demo did not print its URL within 10 s"; }

  echo "browser test of $demo ($mode login) at $url"
  if ! DEMO_URL=$url DEMO_LOGIN=$mode CHROMIUM=$chromium node e2e/demo.test.mjs; then
    echo "--- $demo log ---" >&2
    cat "$log" >&2
    exit 1
  fi
  kill $server 2>/dev/null || true
  wait $server 2>/dev/null || true
  server=""
done
