#!/usr/bin/env bash
# The chaos harness (examples/tests/chaos.rs): three axum-demo replicas on a
# redis-server of its own (no persistence), users logged in over all of them
# with a notification socket each, and one fault per scenario: a replica
# killed (SIGKILL) in the middle of its hooks, Redis restarted empty, every
# Redis connection cut, a hook that hangs, a replica's clock 30 s ahead, a
# cluster master killed and restarted empty. It counts lost, duplicated and
# revived sessions and sockets left open, per scenario; the last line is
#   chaos: scenarios S, users U, lost L, duplicated D, revived R, open after logout O, max lateness M ms
#
# Usage: scripts/chaos.sh [--quick] [--users N] [--scenarios a,b,...]
#   --quick      24 users per scenario and a 1 s claim lease (what scripts/test.sh
#                runs: a loaded CI machine gets more room before a live replica's
#                claim could lapse; the lateness then includes a 1 s takeover)
#   --users N    users per scenario (default 300)
#   --scenarios  some of: baseline, kill-claimer, redis-restart, cut-connections,
#                hung-hook, skewed-clock, cluster-master-restart, sign-out-kill-claimer
set -euo pipefail
cd "$(dirname "$0")/.."

users=300
scenarios=""
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) users=24; export CHAOS_LEASE_MS=${CHAOS_LEASE_MS:-1000} CHAOS_COMMAND_TIMEOUT_MS=${CHAOS_COMMAND_TIMEOUT_MS:-400} ;;
    --users) users="${2:?--users needs a number}"; shift ;;
    --scenarios) scenarios="${2:?--scenarios needs a list}"; shift ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

for tool in redis-server redis-cli; do
  command -v "$tool" >/dev/null 2>&1 || {
    echo "error: $tool is missing: install the Debian package redis-server / redis-tools" \
      "(apt-get install redis-server redis-tools), or run scripts/test.sh, which installs them" >&2
    exit 1
  }
done

log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
CHAOS_USERS=$users CHAOS_SCENARIOS=$scenarios \
  cargo test -p examples --test chaos --locked -- --nocapture 2>&1 | tee "$log" || status=$?
summary=$(grep '^chaos: ' "$log" | tail -1 || true)
if [ -z "$summary" ]; then
  echo "chaos: the harness did not finish (see above)" >&2
  exit 1
fi
echo "$summary"
exit "$status"
