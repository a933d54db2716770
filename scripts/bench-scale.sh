#!/usr/bin/env bash
# The timeout at scale, on both stores (bench/src/bin/scale-bench.rs):
#   sweep:    10,000 due keys among 100,000, 1,000,000 and 10,000,000
#             tracked keys (--sizes to choose), on the memory store, on one
#             Redis and on a 3-master Redis Cluster (1,000,000 keys): time
#             to claim and deliver them (3 rounds each: min/median/max) and
#             memory per tracked key (resident set for the memory store,
#             Redis used_memory for Redis);
#   lateness: 100,000 users going idle over one minute among 1,000,000
#             tracked: how late warnings and logouts reach their
#             subscriptions (p50/p99/max).
# Starts a redis-server of its own on a free port (the bench flushes it);
# the cluster mode starts its own cluster. Prints a table at the end.
#
# Usage: scripts/bench-scale.sh [--quick] [--sizes "100000 1000000"]
#   --quick: tiny sizes, seconds (what the test suite runs).
set -euo pipefail
cd "$(dirname "$0")/.."

sizes="100000 1000000 10000000"
due=10000
cluster_keys=1000000
late=(--keys 100000 --tracked 900000 --spread-seconds 60)
quick=0
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1; shift ;;
    --sizes) sizes="$2"; shift 2 ;;
    *) echo "usage: scripts/bench-scale.sh [--quick] [--sizes \"N ...\"]" >&2; exit 2 ;;
  esac
done
if [ "$quick" = 1 ]; then
  sizes="20000"; due=2000; cluster_keys=20000
  late=(--keys 2000 --tracked 2000 --spread-seconds 2 --timeout-seconds 3 --warn-seconds 1)
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
rows=()
# run LABEL KEYS ARGS...: one sweep, its output shown, its summary kept.
run() {
  local label=$1 keys=$2; shift 2
  echo "## sweep, $label, $keys keys"
  local out
  out=$("$bench" sweep --keys "$keys" --due "$due" "$@") || { echo "$out"; fail "sweep $label $keys failed"; }
  echo "$out"
  local bytes times
  bytes=$(sed -n 's/.*: \([0-9]*\) bytes per tracked key/\1/p' <<<"$out")
  times=$(sed -n 's/.*rounds: \(.*\)$/\1/p' <<<"$out")
  rows+=("| $label | $keys | $due | $times | $bytes |")
}
for keys in $sizes; do
  run "memory" "$keys" --store memory
  run "Redis" "$keys" --store redis "${redis[@]}"
done
run "Redis Cluster, 3 masters" "$cluster_keys" --store redis --cluster 3
for store in memory redis; do
  extra=(); [ "$store" = redis ] && extra=("${redis[@]}")
  echo "## lateness, $store store"
  "$bench" lateness --store "$store" "${extra[@]}" "${late[@]}"
done
echo
echo "| store | tracked keys | due | claim and deliver (3 rounds) | bytes per tracked key |"
echo "|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
