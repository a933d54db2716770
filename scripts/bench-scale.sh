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
cargo build --release --locked --quiet -p bench --bin scale-bench
bench=target/release/scale-bench

redis_pid=""
trap '[ -n "$redis_pid" ] && kill "$redis_pid" 2>/dev/null' EXIT
source scripts/lib/own-redis.sh
start_own_redis
redis=(--redis "redis://127.0.0.1:$redis_port")

echo "Machine: $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo), $(nproc) cores; $(rustc --version); $(redis-server --version | awk '{print $1, $2, $3}')"
for store in memory redis; do
  extra=(); [ "$store" = redis ] && extra=("${redis[@]}")
  echo "## sweep, $store store"
  "$bench" sweep --store "$store" "${extra[@]}" "${sweep[@]}"
  echo "## lateness, $store store"
  "$bench" lateness --store "$store" "${extra[@]}" "${late[@]}"
done
