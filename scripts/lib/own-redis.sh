# Sourced by the benchmark scripts (which define fail).
# start_own_redis [COMMAND PREFIX...]: starts a redis-server of our own on a
# free port, without persistence, run under the prefix (e.g. taskset -c 1);
# sets redis_port and redis_pid. The caller kills redis_pid when it exits.
start_own_redis() {
  command -v redis-server >/dev/null 2>&1 \
    || fail "redis-server is missing: install the Debian package redis-server (apt-get install redis-server)"
  command -v redis-cli >/dev/null 2>&1 \
    || fail "redis-cli is missing: install the Debian package redis-tools (apt-get install redis-tools)"
  redis_port=""; redis_pid=""
  local candidate
  for _ in $(seq 1 50); do
    candidate=$((20000 + RANDOM % 30000))
    redis-cli -p "$candidate" ping >/dev/null 2>&1 && continue
    "$@" redis-server --port "$candidate" --bind 127.0.0.1 --save '' --appendonly no \
      --loglevel warning >/dev/null 2>&1 &
    redis_pid=$!
    for _ in $(seq 1 50); do
      redis-cli -p "$candidate" ping >/dev/null 2>&1 && { redis_port=$candidate; return 0; }
      sleep 0.1
    done
    kill "$redis_pid" 2>/dev/null || true; redis_pid=""
  done
  fail "could not start redis-server on a free port"
}
