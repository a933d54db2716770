#!/usr/bin/env bash
# Whole-server benchmark: release servers with one worker thread each,
# measured with wrk (-t1 -c32) after a warm-up, interleaved A B A B so that
# machine noise hits both sides of a ratio alike. Every request sends the
# same logged-in cookie (from the stack's GET /login), so each is a
# read-only request of a hot session. Beside our layer and middleware it
# measures the anchors: idle timeouts done with tower-sessions
# (Expiry::OnInactivity, with_always_save) and actix-session
# (TtlExtensionPolicy::OnEveryRequest); see bench/src/bin/bench-server.rs.
#
# Usage: scripts/bench-http.sh [--duration SECONDS] [--rounds N] [--quick]
#   --quick: 2-second runs, 1 round (checks the script and servers work)
# Prints a Markdown table: the median over rounds of requests/s and of p50/p99
# latency, the median over rounds of the ratio to the framework's hello-world
# measured in the same round (medians, because a shared VM has bursts of
# noise) and, for the Redis stacks, Redis
# commands per request (INFO commandstats before/after the measured run,
# background flushes and sweeps included). Server on CPU 0, wrk on CPU 1
# when taskset exists; the redis-server the script starts shares CPU 1.
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


cargo build --release --locked --quiet -p bench --bin bench-server
server_bin=target/release/bench-server

# Groups measured side by side: baseline first.
groups=(
  "axum-hello axum-memory axum-redis axum-tower-sessions-memory axum-tower-sessions-redis"
  "actix-hello actix-memory actix-redis actix-session-redis"
)

results=$(mktemp)
log=$(mktemp)
server=""
redis_pid=""
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null
  [ -n "$redis_pid" ] && kill "$redis_pid" 2>/dev/null
  rm -f "$results" "$log"
}
trap cleanup EXIT

# A redis-server of our own on a free port, no persistence.
source scripts/lib/own-redis.sh
start_own_redis $pin_wrk
redis_calls() {
  redis-cli -p "$redis_port" info commandstats \
    | awk -F'[:=,]' '/^cmdstat_/ {sum += $3} END {print sum + 0}'
}

# to_ms 1.23ms|456.00us|1.01s -> milliseconds
to_ms() {
  awk -v v="$1" 'BEGIN {
    if (v ~ /us$/) { sub(/us$/, "", v); print v / 1000 }
    else if (v ~ /ms$/) { sub(/ms$/, "", v); print v + 0 }
    else if (v ~ /s$/) { sub(/s$/, "", v); print v * 1000 }
    else print v }'
}

# The name=value of the Set-Cookie that GET /login answers on 127.0.0.1:port.
login_cookie() { # port
  local cookie
  exec 3<>"/dev/tcp/127.0.0.1/$1" || return 1
  printf 'GET /login HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' >&3
  cookie=$(tr -d '\r' <&3 | awk 'tolower($0) ~ /^set-cookie:/ { sub(/^[^:]*: */, ""); sub(/;.*/, ""); print; exit }')
  exec 3<&-
  printf '%s' "$cookie"
}

measure() { # stack
  local stack=$1 url="" out cookie
  $pin_server "$server_bin" --stack "$stack" --port 0 \
    --redis "redis://127.0.0.1:$redis_port" >"$log" 2>&1 &
  server=$!
  for _ in $(seq 1 100); do
    url=$(grep -o 'http://127\.0\.0\.1:[0-9]*/' "$log" | head -n 1 || true)
    [ -n "$url" ] && break
    kill -0 "$server" 2>/dev/null || { cat "$log" >&2; fail "bench-server --stack $stack exited"; }
    sleep 0.1
  done
  [ -n "$url" ] || fail "bench-server --stack $stack did not print its URL"
  cookie=$(login_cookie "$(sed 's|.*:\([0-9]*\)/$|\1|' <<<"$url")")
  [ -n "$cookie" ] || fail "bench-server --stack $stack: GET /login set no cookie"
  $pin_wrk wrk -t1 -c32 -d"${warmup}s" -H "Cookie: $cookie" "$url" >/dev/null
  local calls_before calls_after
  calls_before=$(redis_calls)
  out=$($pin_wrk wrk -t1 -c32 -d"${duration}s" --latency -H "Cookie: $cookie" "$url")
  calls_after=$(redis_calls)
  kill "$server" 2>/dev/null; wait "$server" 2>/dev/null || true; server=""
  local rps p50 p99 errors requests per_request="-"
  requests=$(awk '/requests in/ {print $1}' <<<"$out")
  case "$stack" in
    *-redis) per_request=$(awk -v c=$((calls_after - calls_before - 1)) -v r="$requests" \
      'BEGIN { printf "%.5f", c / r }') ;;
  esac
  rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
  p50=$(to_ms "$(awk '$1 == "50%" {print $2}' <<<"$out")")
  p99=$(to_ms "$(awk '$1 == "99%" {print $2}' <<<"$out")")
  errors=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' <<<"$out")
  [ -z "$errors" ] || fail "$stack answered $errors requests with an error status"
  echo "$stack $rps $p50 $p99 $per_request $round" >>"$results"
  printf '  %-28s %10s req/s  p50 %6s ms  p99 %6s ms  redis cmds/req %s\n' \
    "$stack" "$rps" "$p50" "$p99" "$per_request" >&2
}

echo "measuring: ${rounds} round(s) of ${duration}s per server, interleaved" >&2
for round in $(seq 1 "$rounds"); do
  echo "round $round" >&2
  for group in "${groups[@]}"; do
    for stack in $group; do measure "$stack"; done
  done
done

cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
echo
echo "Machine: ${cpu:-unknown CPU}, $(nproc) cores; $(rustc --version); $(redis-server --version | awk '{print $1, $2, $3}'); wrk -t1 -c32 -d${duration}s, ${rounds} round(s), medians"
echo
echo "| server | requests/s | p50 ms | p99 ms | vs its hello-world | Redis commands/request |"
echo "|---|---:|---:|---:|---:|---:|"
median() { # stack column
  awk -v s="$1" -v c="$2" '$1 == s {print $c}' "$results" | sort -g \
    | awk '{v[NR] = $1} END {if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}
# The ratio of a stack to its hello-world in the same round, the median
# over rounds: a slow minute of the VM hits both sides of each ratio.
ratio() { # stack base
  awk -v s="$1" -v b="$2" '$1 == b {base[$6] = $2} $1 == s {rps[$6] = $2}
    END {for (r in rps) if (base[r] > 0) print rps[r] / base[r]}' "$results" | sort -g \
    | awk '{v[NR] = $1} END {if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}
for group in "${groups[@]}"; do
  base=${group%% *}
  for stack in $group; do
    cmds="-"
    case "$stack" in *-redis) cmds=$(median "$stack" 5) ;; esac
    awk -v s="$stack" -v r="$(median "$stack" 2)" -v p50="$(median "$stack" 3)" \
        -v p99="$(median "$stack" 4)" -v q="$(ratio "$stack" "$base")" -v c="$cmds" \
      'BEGIN { printf "| %s | %.0f | %.3f | %.3f | %.3f | %s |\n", s, r, p50, p99, q, c }'
  done
done
