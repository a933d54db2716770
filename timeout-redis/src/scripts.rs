//! The Lua scripts: every change of more than one step runs in one of them,
//! atomically, with the time taken from the Redis server so replicas with
//! skewed clocks agree. Each returns the server time first, which the
//! store uses to follow the server clock between calls.
//!
//! The scripts build key names from a shard prefix passed in `ARGV`; every
//! such name carries the shard's hash tag, the same slot as the declared
//! `KEYS`, so they run unchanged on Redis Cluster.

use redis::Script;

/// Shared Lua helpers, prepended to every script.
const PRELUDE: &str = r#"
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function num(v) return tonumber(v) or 0 end
local function deadline_of(l, t, a)
  local d = l + t
  if a > 0 and a < d then return a end
  return d
end
local function next_due(d, w, warn)
  if warn > 0 and w ~= d then return d - warn end
  return d
end
local function fmt(n) return string.format('%d', n) end
-- A warning's lease is at most half the time left to its deadline, so a
-- replica that dies right after claiming it leaves time for another to
-- send it before the deadline.
local function warning_lease(d, now, lease)
  return math.min(lease, math.max(math.floor((d - now) / 2), 100))
end
-- The shard's state must be the incarnation this replica knows (epoch id
-- `known`). If not, Redis lost it (a restart without persistence, a
-- failover to a lagging replica, a flush) or another replica already
-- noticed that: returns the reply telling this replica so, and the first
-- to notice records when, creating the new epoch `candidate`.
local function epoch_changed(ek, known, candidate, now)
  local e = redis.call('HMGET', ek, 'id', 'lost')
  local id, lost = e[1], num(e[2])
  if id == known then return nil end
  local first = 0
  if not id then
    id, lost, first = candidate, now, 1
    redis.call('HSET', ek, 'id', id, 'lost', lost)
  elseif lost == 0 then
    lost, first = now, 1
    redis.call('HSET', ek, 'lost', lost)
  end
  return {now, 'E', id, lost, first}
end
-- Claims the key hash h (member m of the shard's due set): leases the
-- event, marks its sessions as timed out in this shard, and deletes it.
-- Returns the event JSON and the claim id.
local function claim(h, m, due, leases, claims, gone_prefix, now, remember, lease)
  local all = redis.call('HGETALL', h)
  local f, sessions = {}, {}
  for i = 1, #all, 2 do
    local name = all[i]
    if string.sub(name, 1, 2) == 's:' then
      sessions[#sessions + 1] = string.sub(name, 3)
    else
      f[name] = all[i + 1]
    end
  end
  local l, t, a = num(f.l), num(f.t), num(f.a)
  local d = deadline_of(l, t, a)
  local cause = 'i'
  if a > 0 and a <= l + t then cause = 'a' end
  if remember > 0 then
    for _, s in ipairs(sessions) do
      redis.call('SET', gone_prefix .. s, '1', 'PX', remember)
    end
  end
  local id = 'x:' .. m .. ':' .. fmt(d)
  local event = cjson.encode({k = f.K or '', u = f.u or '', s = sessions, d = fmt(d), c = cause})
  redis.call('HSET', claims, id, event)
  redis.call('ZADD', leases, now + lease, id)
  redis.call('DEL', h)
  redis.call('ZREM', due, m)
  return event, id
end
local function create(h, due, m, key, user, sf, now, timeout, lifetime, warn)
  local a = 0
  if lifetime > 0 then a = now + lifetime end
  redis.call('HSET', h, 'K', key, 'u', user, 'l', now, 't', timeout, 'a', a, 'w', 0, sf, '1')
  local d = deadline_of(now, timeout, a)
  redis.call('ZADD', due, next_due(d, 0, warn), m)
  return d, a
end
"#;

/// The epoch a replica starts from: the shard's current one, or a new one
/// (never lost: nothing was there) for an empty shard.
/// KEYS: epoch. ARGV: candidate id.
/// Returns `{now, id, lost}`.
const INIT_EPOCH: &str = r#"
local now = now_ms()
local e = redis.call('HMGET', KEYS[1], 'id', 'lost')
if e[1] then return {now, e[1], num(e[2])} end
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'lost', 0)
return {now, ARGV[1], 0}
"#;

/// One request of one key.
///
/// KEYS: hash, due, leases, claims, this session's timed-out marker, epoch,
/// the key's lost-state marker.
/// ARGV: member, raw key, user, escaped session, activity (1/0), timeout,
/// absolute lifetime (0: none), warn, remember, lease, gone prefix, age of
/// unflushed local activity (-1: none), known epoch, candidate epoch,
/// login (1/0), known to this replica's cache (1/0), re-track after a
/// state loss (1/0), most sessions per key.
///
/// Returns `{now, 'L', deadline, absolute}`, `{now, 'R'}` (refused),
/// `{now, 'M'}` (a new session past the per-key limit),
/// `{now, 'X', event, id}` (expired, claimed by this caller),
/// `{now, 'N', deadline, absolute, event, id}` (old period claimed, a new
/// one started), `{now, 'S', lost}` (a session the store lost: this caller
/// logs it out, once) or the epoch reply (`'E'`).
const TOUCH: &str = r#"
local now = now_ms()
local h, due, leases, claims, gone = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local ek, dead = KEYS[6], KEYS[7]
local m, key, user, sf = ARGV[1], ARGV[2], ARGV[3], 's:' .. ARGV[4]
local activity, timeout, lifetime = ARGV[5] == '1', tonumber(ARGV[6]), tonumber(ARGV[7])
local warn, remember, lease = tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10])
local gone_prefix, age = ARGV[11], tonumber(ARGV[12])
local login, cached, retrack = ARGV[15] == '1', ARGV[16] == '1', ARGV[17] == '1'
local max_sessions = tonumber(ARGV[18])
local changed = epoch_changed(ek, ARGV[13], ARGV[14], now)
if changed then return changed end
local v = redis.call('HMGET', h, 'l', 't', 'a', 'w', sf)
if v[1] then
  local l, t, a, w = num(v[1]), num(v[2]), num(v[3]), num(v[4])
  if age >= 0 then
    local at = now - age
    if at > l and at < deadline_of(l, t, a) then
      l = at
      redis.call('HSET', h, 'l', l)
    end
  end
  local d = deadline_of(l, t, a)
  if now < d then
    if not v[5] then
      if redis.call('EXISTS', gone) == 1 then return {now, 'R'} end
      -- Six fields are the key's own (K u l t a w), the rest its sessions.
      if redis.call('HLEN', h) - 6 >= max_sessions then return {now, 'M'} end
      redis.call('HSET', h, sf, '1')
    end
    if activity then
      local shortened = false
      if timeout ~= t then
        redis.call('HSET', h, 't', timeout)
        shortened = timeout < t
        t = timeout
      end
      if now > l then
        l = now
        redis.call('HSET', h, 'l', l)
      end
      d = deadline_of(l, t, a)
      if shortened then redis.call('ZADD', due, 'LT', next_due(d, w, warn), m) end
    end
    return {now, 'L', d, a}
  end
  local event, id = claim(h, m, due, leases, claims, gone_prefix, now, remember, lease)
  if v[5] or redis.call('EXISTS', gone) == 1 then return {now, 'X', event, id} end
  local nd, na = create(h, due, m, key, user, sf, now, timeout, lifetime, warn)
  return {now, 'N', nd, na, event, id}
end
if redis.call('EXISTS', gone) == 1 then return {now, 'R'} end
if not login and not retrack then
  -- An unknown key is a new session, unless the store lost it: a key this
  -- replica knew, one whose due entry outlived its hash (evicted), one
  -- logged out after a loss, or any key while a session from before a
  -- loss could still be alive.
  if redis.call('EXISTS', dead) == 1 then return {now, 'R'} end
  local lost = num(redis.call('HGET', ek, 'lost'))
  local evicted = redis.call('ZSCORE', due, m)
  if evicted then redis.call('ZREM', due, m) end
  if cached or evicted or (lost > 0 and now < lost + timeout + remember) then
    local keep = math.max(remember, 1000)
    redis.call('SET', gone, '1', 'PX', keep)
    if redis.call('SET', dead, '1', 'NX', 'PX', keep) then
      if cached or evicted or lost == 0 then lost = now end
      return {now, 'S', lost}
    end
    return {now, 'R'}
  end
end
local d, a = create(h, due, m, key, user, sf, now, timeout, lifetime, warn)
return {now, 'L', d, a}
"#;

/// Coalesced activity of one shard: moves each key's last activity to when
/// it happened (its age, against the server clock), if that was before its
/// deadline. Expiry is left to the gate and the sweep.
///
/// KEYS: the shard's due set (to route by its slot), epoch.
/// ARGV: hash prefix, known epoch, candidate epoch, then pairs of member,
/// age ms.
/// Returns `{now, deadline...}`, 0 for a key no longer tracked, or the
/// epoch reply.
const FLUSH: &str = r#"
local now = now_ms()
local changed = epoch_changed(KEYS[2], ARGV[2], ARGV[3], now)
if changed then return changed end
local out = {now}
for i = 4, #ARGV, 2 do
  local h = ARGV[1] .. ARGV[i]
  local v = redis.call('HMGET', h, 'l', 't', 'a')
  if v[1] then
    local l, t, a = num(v[1]), num(v[2]), num(v[3])
    local d = deadline_of(l, t, a)
    local at = now - tonumber(ARGV[i + 1])
    if at > l and at < d then
      redis.call('HSET', h, 'l', at)
      d = deadline_of(at, t, a)
    end
    out[#out + 1] = d
  else
    out[#out + 1] = 0
  end
end
return out
"#;

/// Claims up to `limit` due events of one shard: first claims whose lease
/// ran out (their claimer died), then due warnings and expiries. Entries
/// filed too early (activity moved the deadline) are filed again.
///
/// A due key whose hash is gone was evicted (or deleted by hand): it is
/// logged out once as lost (kind `l`, the member in place of the event),
/// never silently forgotten.
///
/// KEYS: due, leases, claims, epoch.
/// ARGV: limit, warn, remember, lease, hash prefix, gone prefix, known
/// epoch, candidate epoch, dead prefix, re-track after a loss (1/0).
/// Returns `{now, next, kind, event, id, ...}` where `next` is the earliest
/// time this shard has something to do (-1: nothing) and kind is `w`, `x`
/// or `l`; or the epoch reply.
const CLAIM: &str = r#"
local now = now_ms()
local due, leases, claims = KEYS[1], KEYS[2], KEYS[3]
local limit, warn, remember, lease = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local hash_prefix, gone_prefix, dead_prefix, retrack = ARGV[5], ARGV[6], ARGV[9], ARGV[10] == '1'
local changed = epoch_changed(KEYS[4], ARGV[7], ARGV[8], now)
if changed then return changed end
local out = {now, -1}
local n = 0
for _, id in ipairs(redis.call('ZRANGEBYSCORE', leases, '-inf', now, 'LIMIT', 0, limit)) do
  local event = redis.call('HGET', claims, id)
  local kind = string.sub(id, 1, 1)
  local keep = event ~= false
  local expires = now + lease
  if keep and kind == 'w' then
    -- A warning is worth sending late only while its deadline is ahead.
    -- An unreadable one is handed out as it is, to be set aside.
    local ok, decoded = pcall(cjson.decode, event)
    if ok and type(decoded) == 'table' then
      local d = num(decoded.d)
      keep = d > now
      expires = now + warning_lease(d, now, lease)
    end
  end
  if keep then
    redis.call('ZADD', leases, expires, id)
    out[#out + 1] = kind
    out[#out + 1] = event
    out[#out + 1] = id
    n = n + 1
  else
    redis.call('ZREM', leases, id)
    redis.call('HDEL', claims, id)
  end
end
if n < limit then
  for _, m in ipairs(redis.call('ZRANGEBYSCORE', due, '-inf', now, 'LIMIT', 0, limit - n)) do
    local h = hash_prefix .. m
    local v = redis.call('HMGET', h, 'l', 't', 'a', 'w', 'K')
    if not v[1] then
      redis.call('ZREM', due, m)
      if not retrack and redis.call('SET', dead_prefix .. m, '1', 'NX', 'PX', math.max(remember, 1000)) then
        out[#out + 1] = 'l'
        out[#out + 1] = m
        out[#out + 1] = ''
      end
    else
      local l, t, a, w = num(v[1]), num(v[2]), num(v[3]), num(v[4])
      local d = deadline_of(l, t, a)
      if d <= now then
        local event, id = claim(h, m, due, leases, claims, gone_prefix, now, remember, lease)
        out[#out + 1] = 'x'
        out[#out + 1] = event
        out[#out + 1] = id
      elseif warn > 0 and w ~= d and d - warn <= now then
        redis.call('HSET', h, 'w', d)
        local id = 'w:' .. m .. ':' .. fmt(d)
        local event = cjson.encode({k = v[5] or '', d = fmt(d)})
        redis.call('HSET', claims, id, event)
        redis.call('ZADD', leases, now + warning_lease(d, now, lease), id)
        redis.call('ZADD', due, d, m)
        out[#out + 1] = 'w'
        out[#out + 1] = event
        out[#out + 1] = id
      else
        redis.call('ZADD', due, next_due(d, w, warn), m)
      end
    end
  end
end
local first_due = redis.call('ZRANGE', due, 0, 0, 'WITHSCORES')
local first_lease = redis.call('ZRANGE', leases, 0, 0, 'WITHSCORES')
local next = -1
if first_due[2] then next = tonumber(first_due[2]) end
if first_lease[2] and (next < 0 or tonumber(first_lease[2]) < next) then next = tonumber(first_lease[2]) end
out[2] = next
return out
"#;

/// Claims the logout of keys a replica knew but its shard's state lost:
/// each once across replicas, unless it is tracked again (a new login
/// since) or one of its sessions was logged out properly before.
/// KEYS: epoch (to route by the slot).
/// ARGV: hash prefix, dead prefix, gone prefix, how long to remember, then
/// pairs of member and its escaped sessions separated by spaces.
/// Returns `{now, member...}`: the keys this caller logs out.
const LOST: &str = r#"
local now = now_ms()
local out = {now}
local keep = math.max(tonumber(ARGV[4]), 1000)
for i = 5, #ARGV, 2 do
  local m = ARGV[i]
  local claim = redis.call('EXISTS', ARGV[1] .. m) == 0
  local sessions = {}
  for s in string.gmatch(ARGV[i + 1], '%S+') do
    sessions[#sessions + 1] = s
    if claim and redis.call('EXISTS', ARGV[3] .. s) == 1 then claim = false end
  end
  if claim and redis.call('SET', ARGV[2] .. m, '1', 'NX', 'PX', keep) then
    for _, s in ipairs(sessions) do
      redis.call('SET', ARGV[3] .. s, '1', 'PX', keep)
    end
    out[#out + 1] = m
  end
end
return out
"#;

/// Acknowledges handled claims of one shard. KEYS: leases, claims. ARGV: ids.
const ACK: &str = r#"
local now = now_ms()
for _, id in ipairs(ARGV) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('HDEL', KEYS[2], id)
end
return {now}
"#;

/// Extends the leases of claims this replica still works on, so a slow but
/// live hook is never handed to another replica. A claim no longer leased
/// (acknowledged, or taken over after this replica lost Redis for longer
/// than a lease) is left alone and reported.
/// KEYS: leases. ARGV: lease ms, then ids.
/// Returns `{now, lost id...}`.
const RENEW: &str = r#"
local now = now_ms()
local out = {now}
local lease = tonumber(ARGV[1])
for i = 2, #ARGV do
  if redis.call('ZADD', KEYS[1], 'XX', 'CH', now + lease, ARGV[i]) == 0
     and not redis.call('ZSCORE', KEYS[1], ARGV[i]) then
    out[#out + 1] = ARGV[i]
  end
end
return out
"#;

/// Ends one session of a key (explicit logout); the key goes when no
/// session is left. The session is remembered as ended (a tombstone) until
/// its deadline and `remember` after it, as a timeout would be, so a
/// replayed cookie is refused rather than tracked afresh.
/// KEYS: hash, due, the session's marker in this shard. ARGV: member,
/// escaped session, remember ms.
/// Returns `{now, 1, ttl}` if the session was tracked (ttl: how long the
/// marker lives), else `{now, 0, 0}`.
const END_SESSION: &str = r#"
local now = now_ms()
local v = redis.call('HMGET', KEYS[1], 'l', 't', 'a')
if redis.call('HDEL', KEYS[1], 's:' .. ARGV[2]) == 0 then return {now, 0, 0} end
local d = deadline_of(num(v[1]), num(v[2]), num(v[3]))
local ttl = math.max(d - now, 0) + tonumber(ARGV[3])
if ttl < 1 then ttl = 1 end
redis.call('SET', KEYS[3], '1', 'PX', ttl)
for _, name in ipairs(redis.call('HKEYS', KEYS[1])) do
  if string.sub(name, 1, 2) == 's:' then return {now, 1, ttl} end
end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return {now, 1, ttl}
"#;

/// Stops tracking a key without an event. KEYS: hash, due. ARGV: member.
const REMOVE: &str = r#"
local now = now_ms()
local removed = redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return {now, removed}
"#;

/// The scripts, each hashed once; calls go by SHA (`EVALSHA`), loading the
/// script only when the server does not know it (after a restart).
#[derive(Debug)]
pub(crate) struct Scripts {
    pub(crate) touch: Script,
    pub(crate) flush: Script,
    pub(crate) claim: Script,
    pub(crate) ack: Script,
    pub(crate) renew: Script,
    pub(crate) init_epoch: Script,
    pub(crate) lost: Script,
    pub(crate) end_session: Script,
    pub(crate) remove: Script,
}

impl Scripts {
    pub(crate) fn new() -> Scripts {
        let with_prelude = |body: &str| Script::new(&format!("{PRELUDE}{body}"));
        Scripts {
            touch: with_prelude(TOUCH),
            flush: with_prelude(FLUSH),
            claim: with_prelude(CLAIM),
            ack: with_prelude(ACK),
            renew: with_prelude(RENEW),
            init_epoch: with_prelude(INIT_EPOCH),
            lost: with_prelude(LOST),
            end_session: with_prelude(END_SESSION),
            remove: with_prelude(REMOVE),
        }
    }

    pub(crate) fn all(&self) -> [&Script; 9] {
        [
            &self.touch,
            &self.flush,
            &self.claim,
            &self.ack,
            &self.renew,
            &self.init_epoch,
            &self.lost,
            &self.end_session,
            &self.remove,
        ]
    }
}
