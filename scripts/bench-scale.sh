#!/usr/bin/env bash
# The timeout at scale, on both stores (bench/src/bin/scale-bench.rs):
#   sweep:    1,000,000 tracked keys, 10,000 of them due: time to claim and
#             deliver them, and memory per tracked key (resident set for the
#             memory store, Redis used_memory for Redis);
#   lateness: 100,000 users going idle over one minute: how late warnings
#             and logouts reach their subscriptions (p50/p99/max).
# Starts a redis-server of its own on a free port (the bench flushes it).
#
# Usage: scripts/bench-scale.sh [--quick]   (--quick: tiny sizes, seconds)
set -euo pipefail
cd "$(dirname "$0")/.."

sweep=(--keys 1000000 --due 10000)
late=(--keys 100000 --spread-seconds 60)
if [ "${1:-}" = "--quick" ]; then
  sweep=(--keys 20000 --due 2000)
  late=(--keys 2000 --spread-seconds 2 --timeout-seconds 3 --warn-seconds 1)
elif [ $# -gt 0 ]; then
  echo "usage: scripts/bench-scale.sh [--quick]" >&2; exit 2
fi

fail() { printf 'error: %s\n' "$*" >&2; exit 1; }
command -v redis-server >/dev/null 2>&1 \
  || fail "redis-server is missing: install the Debian package redis-server (apt-get install redis-server)"
command -v redis-cli >/dev/null 2>&1 \
  || fail "redis-cli is missing: install the Debian package redis-tools (apt-get install redis-tools)"

cargo build --release --locked --quiet -p bench --bin scale-bench
bench=target/release/scale-bench

redis_pid=""
trap '[ -n "$redis_pid" ] && kill "$redis_pid" 2>/dev/null' EXIT
port=""
for _ in $(seq 1 50); do
  candidate=$((20000 + RANDOM % 30000))
  redis-cli -p "$candidate" ping >/dev/null 2>&1 && continue
  redis-server --port "$candidate" --bind 127.0.0.1 --save '' --appendonly no \
    --loglevel warning >/dev/null 2>&1 &
  redis_pid=$!
  for _ in $(seq 1 50); do
    redis-cli -p "$candidate" ping >/dev/null 2>&1 && { port=$candidate; break; }
    sleep 0.1
  done
  [ -n "$port" ] && break
  kill "$redis_pid" 2>/dev/null || true; redis_pid=""
done
[ -n "$port" ] || fail "could not start redis-server on a free port"
redis=(--redis "redis://127.0.0.1:$port")

echo "Machine: $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo), $(nproc) cores; $(rustc --version); $(redis-server --version | awk '{print $1, $2, $3}')"
for store in memory redis; do
  extra=(); [ "$store" = redis ] && extra=("${redis[@]}")
  echo "## sweep, $store store"
  "$bench" sweep --store "$store" "${extra[@]}" "${sweep[@]}"
  echo "## lateness, $store store"
  "$bench" lateness --store "$store" "${extra[@]}" "${late[@]}"
done
