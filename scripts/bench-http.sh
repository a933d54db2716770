#!/usr/bin/env bash
# Whole-server benchmark: release servers with one worker thread each,
# measured with wrk (-t1 -c32) after a warm-up, interleaved A B A B so that
# machine noise hits both sides of a ratio alike. Every request sends the
# same logged-in cookie, so each is a read-only request of a hot session.
#
# Usage: scripts/bench-http.sh [--duration SECONDS] [--rounds N] [--quick]
#   --quick: 2-second runs, 1 round (checks the script and servers work)
# Prints a Markdown table: the median over rounds of requests/s and of p50/p99
# latency, and the ratio of medians to the framework's hello-world (medians,
# because a shared VM has bursts of noise). Server on CPU 0, wrk on CPU 1
# when taskset exists.
set -euo pipefail
cd "$(dirname "$0")/.."

duration=10
rounds=5
warmup=2
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) duration=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --quick) duration=2; rounds=1; warmup=1; shift ;;
    *) echo "usage: scripts/bench-http.sh [--duration SECONDS] [--rounds N] [--quick]" >&2; exit 2 ;;
  esac
done

fail() { printf 'error: %s\n' "$*" >&2; exit 1; }

if ! command -v wrk >/dev/null 2>&1; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo -n"
  command -v apt-get >/dev/null 2>&1 \
    && { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq wrk; } \
    || fail "wrk is missing: install the Debian package wrk (apt-get install wrk)"
fi
pin_server=""; pin_wrk=""
if command -v taskset >/dev/null 2>&1 && [ "$(nproc)" -ge 2 ]; then
  pin_server="taskset -c 0"; pin_wrk="taskset -c 1"
fi

cargo build --release --locked --quiet -p examples --bin bench-server
server_bin=target/release/bench-server

# Pairs measured side by side: baseline first.
pairs=("axum-hello axum-memory" "actix-hello actix-memory")

results=$(mktemp)
log=$(mktemp)
server=""
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; rm -f "$results" "$log"; }
trap cleanup EXIT

# to_ms 1.23ms|456.00us|1.01s -> milliseconds
to_ms() {
  awk -v v="$1" 'BEGIN {
    if (v ~ /us$/) { sub(/us$/, "", v); print v / 1000 }
    else if (v ~ /ms$/) { sub(/ms$/, "", v); print v + 0 }
    else if (v ~ /s$/) { sub(/s$/, "", v); print v * 1000 }
    else print v }'
}

measure() { # stack
  local stack=$1 url="" out
  $pin_server "$server_bin" --stack "$stack" --port 0 >"$log" 2>&1 &
  server=$!
  for _ in $(seq 1 100); do
    url=$(grep -o 'http://127\.0\.0\.1:[0-9]*/' "$log" | head -n 1 || true)
    [ -n "$url" ] && break
    kill -0 "$server" 2>/dev/null || { cat "$log" >&2; fail "bench-server --stack $stack exited"; }
    sleep 0.1
  done
  [ -n "$url" ] || fail "bench-server --stack $stack did not print its URL"
  $pin_wrk wrk -t1 -c32 -d"${warmup}s" -H 'Cookie: sid=alice' "$url" >/dev/null
  out=$($pin_wrk wrk -t1 -c32 -d"${duration}s" --latency -H 'Cookie: sid=alice' "$url")
  kill "$server" 2>/dev/null; wait "$server" 2>/dev/null || true; server=""
  local rps p50 p99 errors
  rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
  p50=$(to_ms "$(awk '$1 == "50%" {print $2}' <<<"$out")")
  p99=$(to_ms "$(awk '$1 == "99%" {print $2}' <<<"$out")")
  errors=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' <<<"$out")
  [ -z "$errors" ] || fail "$stack answered $errors requests with an error status"
  echo "$stack $rps $p50 $p99" >>"$results"
  printf '  %-14s %10s req/s  p50 %6s ms  p99 %6s ms\n' "$stack" "$rps" "$p50" "$p99" >&2
}

echo "measuring: ${rounds} round(s) of ${duration}s per server, interleaved" >&2
for round in $(seq 1 "$rounds"); do
  echo "round $round" >&2
  for pair in "${pairs[@]}"; do
    for stack in $pair; do measure "$stack"; done
  done
done

cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
echo
echo "Machine: ${cpu:-unknown CPU}, $(nproc) cores; $(rustc --version); wrk -t1 -c32 -d${duration}s, ${rounds} round(s), medians"
echo
echo "| server | requests/s | p50 ms | p99 ms | vs its hello-world |"
echo "|---|---:|---:|---:|---:|"
median() { # stack column
  awk -v s="$1" -v c="$2" '$1 == s {print $c}' "$results" | sort -g \
    | awk '{v[NR] = $1} END {if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}
for pair in "${pairs[@]}"; do
  base_rps=$(median "${pair%% *}" 2)
  for stack in $pair; do
    awk -v s="$stack" -v r="$(median "$stack" 2)" -v p50="$(median "$stack" 3)" \
        -v p99="$(median "$stack" 4)" -v b="$base_rps" \
      'BEGIN { printf "| %s | %.0f | %.3f | %.3f | %.3f |\n", s, r, p50, p99, r / b }'
  done
done
