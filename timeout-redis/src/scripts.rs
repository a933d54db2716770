//! The Lua scripts: every change of more than one step runs in one of them,
//! atomically, with the time taken from the Redis server so replicas with
//! skewed clocks agree. Each returns the server time first, which the
//! store uses to follow the server clock between calls.
//!
//! A shard's state lives in a few big keys (see [`crate::layout`]), so the
//! sweep works on many keys with one variadic command per step (one
//! `HMGET` of the due keys' records, one `ZREM`, one `HDEL`, one `ZADD` of
//! their timed-out sessions) rather than a loop of single-key commands.
//! Every key a script names carries its shard's hash tag, so scripts run
//! unchanged on Redis Cluster.

use redis::Script;

/// Shared Lua helpers, prepended to every script.
const PRELUDE: &str = r#"
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function num(v) return tonumber(v) or 0 end
local function deadline_of(at, t, a)
  local d = at + t
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
-- A key's record, one field of the shard's records hash: "d,a,w,u,s" with
-- its deadline, absolute deadline (0: none), the deadline it was warned
-- for (0: none), its user escaped (empty: the key itself) and its sessions
-- escaped and separated by spaces ('=': the key itself, as in session
-- scope). Escaping keeps commas and spaces out of the names.
local function parse(rec)
  local d, a, w, u, s = string.match(rec, '^(%d+),(%d+),(%d+),([^,]*),(.*)$')
  if not d then return nil end
  return tonumber(d), tonumber(a), tonumber(w), u, s
end
local function pack(d, a, w, u, s)
  return fmt(d) .. ',' .. fmt(a) .. ',' .. fmt(w) .. ',' .. u .. ',' .. s
end
local function sessions_of(s, m)
  if s == '=' then return {m} end
  local out = {}
  for x in string.gmatch(s, '%S+') do out[#out + 1] = x end
  return out
end
local function has_session(s, m, x)
  if s == '=' then return x == m end
  return string.find(' ' .. s .. ' ', ' ' .. x .. ' ', 1, true) ~= nil
end
local function with_session(s, m, x)
  if s == '' then
    if x == m then return '=' end
    return x
  end
  if s == '=' then s = m end
  return s .. ' ' .. x
end
local function without_session(s, m, x)
  local out = {}
  for _, y in ipairs(sessions_of(s, m)) do
    if y ~= x then out[#out + 1] = y end
  end
  if #out == 1 and out[1] == m then return '=' end
  return table.concat(out, ' ')
end
-- Lua's unpack is bounded by its C stack: many arguments go in chunks (an
-- even size, so pairs stay together).
local CHUNK = 1000
local function variadic(cmd, key, args)
  for i = 1, #args, CHUNK do
    redis.call(cmd, key, unpack(args, i, math.min(i + CHUNK - 1, #args)))
  end
end
local function hmget(key, fields)
  local out = {}
  for i = 1, #fields, CHUNK do
    local got = redis.call('HMGET', key, unpack(fields, i, math.min(i + CHUNK - 1, #fields)))
    for j = 1, #got do out[i + j - 1] = got[j] end
  end
  return out
end
-- Whether `x` is in the zset `key` with a score (an expiry) after `now`.
local function marked(key, x, now)
  local until_ms = redis.call('ZSCORE', key, x)
  return until_ms ~= false and tonumber(until_ms) > now
end
-- One claimed logout, as a line of its batch: "x,member," and its record.
local function expiry_line(m, rec)
  return 'x,' .. m .. ',' .. rec
end
-- The sessions of a record, without reading the rest of it.
local function record_sessions(rec, m)
  if string.sub(rec, -2) == ',=' then return {m} end
  return sessions_of(string.match(rec, ',([^,]*)$') or '', m)
end
-- Leases a batch of claimed events under `id`: its text stays in the claims
-- hash until acknowledged, so another replica can take it over.
local function lease_batch(claims, leases, id, lines, expires)
  local text = table.concat(lines, '\n')
  redis.call('HSET', claims, id, text)
  redis.call('ZADD', leases, expires, id)
  return text
end
-- Marks the sessions of timed-out keys as gone until `until_ms`:
-- `marks` holds score, session, score, session...
local function mark_gone(gone, marks)
  if #marks > 0 then variadic('ZADD', gone, marks) end
end
-- Claims key `m` (sessions `s`) as the one batch line `line`, leased under
-- `batch`: it stops being tracked, and its sessions are remembered as gone
-- for `remember`. Shared by every claim of a single key (a timeout at the
-- gate, an operator's sign-out).
local function claim_one(r, due, claims, leases, gone, m, s, line, batch, now, lease, remember)
  lease_batch(claims, leases, batch, {line}, now + lease)
  redis.call('HDEL', r, m)
  redis.call('ZREM', due, m)
  if remember > 0 then
    local marks = {}
    for _, y in ipairs(sessions_of(s, m)) do
      marks[#marks + 1] = now + remember
      marks[#marks + 1] = y
    end
    mark_gone(gone, marks)
  end
end
local function create(r, due, m, u, x, now, timeout, lifetime, warn)
  local a = 0
  if lifetime > 0 then a = now + lifetime end
  local s = x
  if x == m then s = '=' end
  local d = deadline_of(now, timeout, a)
  redis.call('HSET', r, m, pack(d, a, 0, u, s))
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
/// KEYS: records, due, leases, claims, gone (this shard's), epoch, dead.
/// ARGV: member, user field (escaped user, empty when it is the key),
/// escaped session, activity (1/0), timeout, absolute lifetime (0: none),
/// warn, remember, lease, age of unflushed local activity (-1: none), known
/// epoch, candidate epoch, login (1/0), known to this replica's cache
/// (1/0), re-track after a state loss (1/0), most sessions per key.
///
/// Returns `{now, 'L', deadline, absolute}`, `{now, 'R'}` (refused),
/// `{now, 'M'}` (a new session past the per-key limit),
/// `{now, 'X', batch, line}` (expired, claimed by this caller),
/// `{now, 'N', deadline, absolute, batch, line}` (old period claimed, a new
/// one started), `{now, 'S', lost}` (a session the store lost: this caller
/// logs it out, once) or the epoch reply (`'E'`).
const TOUCH: &str = r#"
local now = now_ms()
local r, due, leases, claims, gone = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local ek, dead = KEYS[6], KEYS[7]
local m, u, x = ARGV[1], ARGV[2], ARGV[3]
local activity, timeout, lifetime = ARGV[4] == '1', tonumber(ARGV[5]), tonumber(ARGV[6])
local warn, remember, lease = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
local age = tonumber(ARGV[10])
local login, cached, retrack = ARGV[13] == '1', ARGV[14] == '1', ARGV[15] == '1'
local max_sessions = tonumber(ARGV[16])
local changed = epoch_changed(ek, ARGV[11], ARGV[12], now)
if changed then return changed end
local rec = redis.call('HGET', r, m)
local d, a, w, ru, s
if rec then
  d, a, w, ru, s = parse(rec)
  if not d then
    -- An unreadable record is state lost: the key is logged out once,
    -- never let in on a guess.
    redis.call('HDEL', r, m)
    redis.call('ZREM', due, m)
    local keep = math.max(remember, 1000)
    redis.call('ZADD', gone, now + keep, x)
    redis.call('ZADD', dead, now + keep, m)
    return {now, 'S', now}
  end
end
if d then
  local dirty = false
  if age >= 0 then
    -- Activity this replica saw before this request: it counts from when
    -- it happened, if the key was still alive then.
    local at = now - age
    local nd = deadline_of(at, timeout, a)
    if at < d and nd > d then
      d, dirty = nd, true
    end
  end
  if now < d then
    if not has_session(s, m, x) then
      if marked(gone, x, now) then return {now, 'R'} end
      if #sessions_of(s, m) >= max_sessions then return {now, 'M'} end
      s, dirty = with_session(s, m, x), true
    end
    if activity then
      local nd = deadline_of(now, timeout, a)
      if nd ~= d then
        -- A shorter timeout (a group change) moves the due entry earlier;
        -- a later deadline is refiled lazily by the sweep.
        if nd < d then redis.call('ZADD', due, 'LT', next_due(nd, w, warn), m) end
        d, dirty = nd, true
      end
    end
    if dirty then redis.call('HSET', r, m, pack(d, a, w, ru, s)) end
    return {now, 'L', d, a}
  end
  local member = has_session(s, m, x)
  local was_gone = marked(gone, x, now)
  local line = expiry_line(m, pack(d, a, w, ru, s))
  -- A batch of one, named after its only run: a key's deadline is
  -- claimed once, so the name is unique.
  local batch = 'x:' .. m .. ':' .. fmt(d)
  claim_one(r, due, claims, leases, gone, m, s, line, batch, now, lease, remember)
  if member or was_gone then return {now, 'X', batch, line} end
  local nd, na = create(r, due, m, u, x, now, timeout, lifetime, warn)
  return {now, 'N', nd, na, batch, line}
end
if marked(gone, x, now) then return {now, 'R'} end
if not login and not retrack then
  -- An unknown key is a new session, unless the store lost it: a key this
  -- replica knew, one whose due entry outlived its record (evicted), one
  -- logged out after a loss, or any key while a session from before a
  -- loss could still be alive.
  if marked(dead, m, now) then return {now, 'R'} end
  local lost = num(redis.call('HGET', ek, 'lost'))
  local evicted = redis.call('ZSCORE', due, m)
  if evicted then redis.call('ZREM', due, m) end
  if cached or evicted or (lost > 0 and now < lost + timeout + remember) then
    local keep = math.max(remember, 1000)
    redis.call('ZADD', gone, now + keep, x)
    redis.call('ZADD', dead, now + keep, m)
    if cached or evicted or lost == 0 then lost = now end
    return {now, 'S', lost}
  end
end
local nd, na = create(r, due, m, u, x, now, timeout, lifetime, warn)
return {now, 'L', nd, na}
"#;

/// Coalesced activity of one shard: moves each key's deadline to what the
/// activity gives (from when it happened, against the server clock), if the
/// key was alive then. Expiry is left to the gate and the sweep.
///
/// KEYS: records, epoch.
/// ARGV: known epoch, candidate epoch, then triples of member, age ms,
/// timeout ms.
/// Returns `{now, deadline...}`, 0 for a key no longer tracked, or the
/// epoch reply.
const FLUSH: &str = r#"
local now = now_ms()
local changed = epoch_changed(KEYS[2], ARGV[1], ARGV[2], now)
if changed then return changed end
local members = {}
for i = 3, #ARGV, 3 do members[#members + 1] = ARGV[i] end
local recs = hmget(KEYS[1], members)
local out, writes = {now}, {}
for j, m in ipairs(members) do
  local rec = recs[j]
  local d, a, w, u, s
  if rec then d, a, w, u, s = parse(rec) end
  if d then
    local i = 3 * j
    local at = now - tonumber(ARGV[i + 1])
    local nd = deadline_of(at, tonumber(ARGV[i + 2]), a)
    if at < d and nd > d then
      d = nd
      writes[#writes + 1] = m
      writes[#writes + 1] = pack(d, a, w, u, s)
    end
    out[#out + 1] = d
  else
    out[#out + 1] = 0
  end
end
if #writes > 0 then variadic('HSET', KEYS[1], writes) end
return out
"#;

/// Claims up to `limit` due events of one shard: first batches whose lease
/// ran out (their claimer died), then due warnings and expiries, each kind
/// leased as one batch. Entries filed too early (activity moved the
/// deadline) are filed again. Expired timed-out and dead markers are
/// pruned.
///
/// A due key whose record is gone was evicted (or deleted by hand): it is
/// logged out once as lost, never silently forgotten.
///
/// KEYS: due, leases, claims, epoch, records, gone, dead.
/// ARGV: limit, warn, remember, lease, known epoch, candidate epoch,
/// re-track after a loss (1/0), a new batch id (suffixed `x`/`w`).
/// Returns `{now, next, batch, text, ...}` where `next` is the earliest
/// time this shard has something to do (-1: nothing), each batch's text
/// holds its lines, and an empty batch id carries the members of lost keys
/// separated by spaces; or the epoch reply.
const CLAIM: &str = r#"
local now = now_ms()
local due, leases, claims, r, gone, dead = KEYS[1], KEYS[2], KEYS[3], KEYS[5], KEYS[6], KEYS[7]
local limit, warn, remember, lease = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local retrack, batch = ARGV[7] == '1', ARGV[8]
local changed = epoch_changed(KEYS[4], ARGV[5], ARGV[6], now)
if changed then return changed end
redis.call('ZREMRANGEBYSCORE', gone, '-inf', now)
redis.call('ZREMRANGEBYSCORE', dead, '-inf', now)
local out = {now, -1}
local n = 0
for _, id in ipairs(redis.call('ZRANGEBYSCORE', leases, '-inf', now, 'LIMIT', 0, limit)) do
  local got = redis.call('HMGET', claims, id, id .. '+')
  local text, handled = got[1], {}
  for run in string.gmatch(got[2] or '', '%S+') do handled[run] = true end
  local expires = now + lease
  if text then
    -- Lines handled before the claimer died are not run again; a warning
    -- is worth sending late only while its deadline is ahead.
    local kept = {}
    for line in string.gmatch(text, '[^\n]+') do
      local kind, m, dtext = string.match(line, '^(%a),([^,]*),(%d+)')
      local d = tonumber(dtext)
      local keep = not (kind and handled[kind .. ':' .. m .. ':' .. dtext])
      if keep and kind == 'w' then
        keep = d > now
        if keep then expires = math.min(expires, now + warning_lease(d, now, lease)) end
      end
      if keep then kept[#kept + 1] = line end
    end
    text = false
    if #kept > 0 then
      text = table.concat(kept, '\n')
      redis.call('HSET', claims, id, text)
      redis.call('HDEL', claims, id .. '+')
    end
  end
  if text then
    redis.call('ZADD', leases, expires, id)
    out[#out + 1] = id
    out[#out + 1] = text
    for _ in string.gmatch(text, '[^\n]+') do n = n + 1 end
  else
    redis.call('ZREM', leases, id)
    redis.call('HDEL', claims, id, id .. '+')
  end
end
if n < limit then
  local members = redis.call('ZRANGEBYSCORE', due, '-inf', now, 'LIMIT', 0, limit - n)
  if #members > 0 then
    local recs = hmget(r, members)
    -- The members read are the set's first ones: they leave it in one
    -- range deletion; those not done yet are filed again below.
    redis.call('ZREMRANGEBYRANK', due, 0, #members - 1)
    local expired, warned, lost = {}, {}, {}
    local gone_marks, refile, records, removed = {}, {}, {}, {}
    local wexpires = now + lease
    local forget = now + remember
    for i, m in ipairs(members) do
      local rec = recs[i]
      local d
      if rec then d = tonumber(string.match(rec, '^(%d+),%d+,%d+,')) end
      if not d then
        -- No record (evicted, or deleted by hand), or an unreadable one.
        if rec then removed[#removed + 1] = m end
        if not retrack and not marked(dead, m, now) then
          redis.call('ZADD', dead, now + math.max(remember, 1000), m)
          lost[#lost + 1] = m
        end
      elseif d <= now then
        expired[#expired + 1] = expiry_line(m, rec)
        removed[#removed + 1] = m
        if remember > 0 then
          if string.sub(rec, -2) == ',=' then
            gone_marks[#gone_marks + 1] = forget
            gone_marks[#gone_marks + 1] = m
          else
            for _, y in ipairs(record_sessions(rec, m)) do
              gone_marks[#gone_marks + 1] = forget
              gone_marks[#gone_marks + 1] = y
            end
          end
        end
      else
        local _, a, w, u, s = parse(rec)
        if warn > 0 and w ~= d and d - warn <= now then
          warned[#warned + 1] = 'w,' .. m .. ',' .. fmt(d)
          records[#records + 1] = m
          records[#records + 1] = pack(d, a, d, u, s)
          refile[#refile + 1] = d
          refile[#refile + 1] = m
          wexpires = math.min(wexpires, now + warning_lease(d, now, lease))
        else
          refile[#refile + 1] = next_due(d, w, warn)
          refile[#refile + 1] = m
        end
      end
    end
    if #removed > 0 then variadic('HDEL', r, removed) end
    if #refile > 0 then variadic('ZADD', due, refile) end
    if #records > 0 then variadic('HSET', r, records) end
    mark_gone(gone, gone_marks)
    if #expired > 0 then
      local id = 'x:' .. batch
      out[#out + 1] = id
      out[#out + 1] = lease_batch(claims, leases, id, expired, now + lease)
    end
    if #warned > 0 then
      local id = 'w:' .. batch
      out[#out + 1] = id
      out[#out + 1] = lease_batch(claims, leases, id, warned, wexpires)
    end
    if #lost > 0 then
      out[#out + 1] = ''
      out[#out + 1] = table.concat(lost, ' ')
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
/// KEYS: epoch (to route by the slot), records, dead, gone.
/// ARGV: how long to remember, then pairs of member and its escaped
/// sessions separated by spaces.
/// Returns `{now, member...}`: the keys this caller logs out.
const LOST: &str = r#"
local now = now_ms()
local r, dead, gone = KEYS[2], KEYS[3], KEYS[4]
local out = {now}
local keep = math.max(tonumber(ARGV[1]), 1000)
for i = 2, #ARGV, 2 do
  local m = ARGV[i]
  local claim = redis.call('HEXISTS', r, m) == 0 and not marked(dead, m, now)
  local sessions = {}
  for s in string.gmatch(ARGV[i + 1], '%S+') do
    sessions[#sessions + 1] = s
    if claim and marked(gone, s, now) then claim = false end
  end
  if claim then
    redis.call('ZADD', dead, now + keep, m)
    for _, s in ipairs(sessions) do
      redis.call('ZADD', gone, now + keep, s)
    end
    out[#out + 1] = m
  end
end
return out
"#;

/// Acknowledges handled claims of one shard. KEYS: leases, claims.
/// ARGV: pairs of batch id and what of it was handled: `*` (all of it) or
/// its run ids (`kind:member:deadline`) separated by spaces, added to the
/// batch's handled list (field `<id>+`) so a takeover skips them.
const ACK: &str = r#"
local now = now_ms()
for i = 1, #ARGV, 2 do
  local id, runs = ARGV[i], ARGV[i + 1]
  if runs == '*' then
    redis.call('ZREM', KEYS[1], id)
    redis.call('HDEL', KEYS[2], id, id .. '+')
  elseif redis.call('HEXISTS', KEYS[2], id) == 1 then
    local handled = redis.call('HGET', KEYS[2], id .. '+')
    if handled then runs = handled .. ' ' .. runs end
    redis.call('HSET', KEYS[2], id .. '+', runs)
  end
end
return {now}
"#;

/// Extends the leases of claims this replica still works on, so a slow but
/// live hook is never handed to another replica. A claim no longer leased
/// (acknowledged, or taken over after this replica lost Redis for longer
/// than a lease) is left alone and reported.
/// KEYS: leases. ARGV: lease ms, then batch ids.
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
/// KEYS: records, due, gone (the key's shard's). ARGV: member, escaped
/// session, remember ms.
/// Returns `{now, 1, ttl}` if the session was tracked (ttl: how long the
/// tombstone lives), else `{now, 0, 0}`.
const END_SESSION: &str = r#"
local now = now_ms()
local m, x = ARGV[1], ARGV[2]
local rec = redis.call('HGET', KEYS[1], m)
if not rec then return {now, 0, 0} end
local d, a, w, u, s = parse(rec)
if not d or not has_session(s, m, x) then return {now, 0, 0} end
local ttl = math.max(d - now, 0) + tonumber(ARGV[3])
if ttl < 1 then ttl = 1 end
redis.call('ZADD', KEYS[3], now + ttl, x)
local rest = without_session(s, m, x)
if rest == '' then
  redis.call('HDEL', KEYS[1], m)
  redis.call('ZREM', KEYS[2], m)
else
  redis.call('HSET', KEYS[1], m, pack(d, a, w, u, rest))
end
return {now, 1, ttl}
"#;

/// Stops tracking a key without an event. KEYS: records, due. ARGV: member.
const REMOVE: &str = r#"
local now = now_ms()
local removed = redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return {now, removed}
"#;

/// Whether sessions are marked timed out (or ended) in one shard.
/// KEYS: gone. ARGV: escaped sessions. Returns `{now, 1/0...}`.
const GONE: &str = r#"
local now = now_ms()
local out = {now}
for i = 1, #ARGV do
  if marked(KEYS[1], ARGV[i], now) then out[#out + 1] = 1 else out[#out + 1] = 0 end
end
return out
"#;

/// Marks sessions timed out (or ended) in one shard, where requests that
/// carry only the session id look. KEYS: gone. ARGV: ms to remember them
/// (counted from the server's now), then escaped sessions.
const MARK_GONE: &str = r#"
local now = now_ms()
local marks = {}
for i = 2, #ARGV do
  marks[#marks + 1] = now + tonumber(ARGV[1])
  marks[#marks + 1] = ARGV[i]
end
mark_gone(KEYS[1], marks)
return {now}
"#;

/// Claims one key's logout now, whatever its deadline: an operator signed
/// its user out. Leased as a batch of one line of kind `o`, so a replica
/// that takes the claim over runs it as a sign-out too.
/// KEYS: records, due, leases, claims, gone, epoch (the key's shard's).
/// ARGV: member, remember ms, lease ms, known epoch, candidate epoch, a new
/// batch id.
/// Returns `{now, 'X', batch, line}`, `{now, 'U'}` (not tracked),
/// `{now, 'C', record}` (an unreadable record, left for the touch and the
/// sweep to log out as lost) or the epoch reply.
const CLAIM_NOW: &str = r#"
local now = now_ms()
local r, due, leases, claims, gone = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local m, remember, lease = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local changed = epoch_changed(KEYS[6], ARGV[4], ARGV[5], now)
if changed then return changed end
local rec = redis.call('HGET', r, m)
if not rec then return {now, 'U'} end
local d, _, _, _, s = parse(rec)
if not d then return {now, 'C', rec} end
local line = 'o,' .. m .. ',' .. rec
local batch = 'o:' .. ARGV[6]
claim_one(r, due, claims, leases, gone, m, s, line, batch, now, lease, remember)
return {now, 'X', batch, line}
"#;

/// One step of a scan of a shard's records for the keys of one user (scope
/// session, where a user's sessions are keys of their own, spread over the
/// shards). The filter runs in Redis, so only the user's records travel.
/// KEYS: records. ARGV: cursor, escaped user, records per step.
/// Returns `{now, next cursor ('0': done), member, record, ...}`.
const USER_KEYS: &str = r#"
local now = now_ms()
local got = redis.call('HSCAN', KEYS[1], ARGV[1], 'COUNT', tonumber(ARGV[3]))
local out = {now, got[1]}
local fields = got[2]
for i = 1, #fields, 2 do
  local m, rec = fields[i], fields[i + 1]
  local u = string.match(rec, '^%d+,%d+,%d+,([^,]*),')
  if u == ARGV[2] or (u == '' and m == ARGV[2]) then
    out[#out + 1] = m
    out[#out + 1] = rec
  end
end
return out
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
    pub(crate) gone: Script,
    pub(crate) mark_gone: Script,
    pub(crate) claim_now: Script,
    pub(crate) user_keys: Script,
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
            gone: with_prelude(GONE),
            mark_gone: with_prelude(MARK_GONE),
            claim_now: with_prelude(CLAIM_NOW),
            user_keys: with_prelude(USER_KEYS),
        }
    }

    pub(crate) fn all(&self) -> [&Script; 13] {
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
            &self.gone,
            &self.mark_gone,
            &self.claim_now,
            &self.user_keys,
        ]
    }
}
