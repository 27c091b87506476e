// Lua scripts of the Redis backend: every check-and-set runs inside Redis, atomically, so any
// number of relay nodes can share one Redis (or Cluster). Each campaign script gets one key,
// KEYS[1] = "<prefix>{<campaignId>}", and derives the campaign's other keys from it by suffix;
// they all share the hash tag, so they live in one cluster slot as scripts require.
//
// Campaign keys (B = KEYS[1]):
//   B:c        hash   meta (JSON), roster (bytes), serial
//   B:devs     set    device ids of the current roster (= consumer groups of B:in)
//   B:ek       hash   device id -> signed epoch keys
//   B:inv      hash   invite stored hash -> expiresAt
//   B:vol      hash   pseudonym -> volunteer JSON;   B:rev  hash  pseudonym -> 1 when revoked
//   B:in       stream the inbox: one entry per envelope or complete photo, one group per device
//   B:ts       string last stream id millisecond (ids follow receivedAt, never go backwards)
//   B:left     hash   stream id -> groups that still have to ack it
//   B:env      hash   message id -> envelope bytes (until every device acked)
//   B:seen     hash   message id -> SHA-256 of the envelope (idempotency, until retention)
//   B:seenz    zset   message id by receivedAt (to expire B:seen)
//   B:ph       zset   photo id by creation time
//   B:pm:<id>  hash   photo meta: n (chunk count), at, st (0 incomplete, 1 complete, 2 delivered), got, sid
//   B:pc:<id>  hash   chunk index -> chunk bytes
//   B:mq:<p>   zset   mailbox message ids by arrival;  B:mm:<p> bytes;  B:me:<p> expiresAt
//   B:mseq     string mailbox arrival counter

const PRELUDE = `
local B = KEYS[1]
local S = B .. ':in'
local function fieldsOf(flat)
  local f = {}
  for i = 1, #flat, 2 do f[flat[i]] = flat[i + 1] end
  return f
end
local function idgt(a, b)
  local am, as = string.match(a, '^(%d+)%-(%d+)$')
  local bm, bs = string.match(b, '^(%d+)%-(%d+)$')
  am, as, bm, bs = tonumber(am), tonumber(as), tonumber(bm), tonumber(bs)
  if am ~= bm then return am > bm end
  return as > bs
end
local function campaignExists()
  return redis.call('EXISTS', B .. ':c') == 1
end
-- Removes one stream entry everywhere: the counter, the entry, and every group's pending list.
local function dropId(id)
  redis.call('HDEL', B .. ':left', id)
  redis.call('XDEL', S, id)
  for _, g in ipairs(redis.call('SMEMBERS', B .. ':devs')) do redis.call('XACK', S, g, id) end
end
-- One group acked a stream entry: when none is left, the entry and its payload go.
local function settle(id)
  if redis.call('HINCRBY', B .. ':left', id, -1) > 0 then return end
  redis.call('HDEL', B .. ':left', id)
  local e = redis.call('XRANGE', S, id, id)
  if e[1] then
    local f = fieldsOf(e[1][2])
    if f.k == 'e' then
      redis.call('HDEL', B .. ':env', f.i)
    elseif redis.call('EXISTS', B .. ':pm:' .. f.i) == 1 then
      redis.call('DEL', B .. ':pc:' .. f.i)
      redis.call('HSET', B .. ':pm:' .. f.i, 'st', '2')
    end
  end
  redis.call('XDEL', S, id)
end
-- Appends an inbox item for every current device and tells every relay node.
local function append(kind, item, t, n, channel, cid)
  local ms = tonumber(t)
  local last = tonumber(redis.call('GET', B .. ':ts') or '0')
  if ms < last then ms = last end
  local msText = string.format('%d', ms)
  redis.call('SET', B .. ':ts', msText)
  local id = redis.call('XADD', S, msText .. '-*', 'k', kind, 'i', item, 't', t, 'n', n)
  redis.call('HSET', B .. ':left', id, redis.call('SCARD', B .. ':devs'))
  redis.call('PUBLISH', channel, cid)
  return id
end
`;

function script(body: string): string {
  return PRELUDE + body;
}

export const CREATE_CAMPAIGN = script(`
if campaignExists() then return 0 end
redis.call('HSET', B .. ':c', 'meta', ARGV[1], 'roster', ARGV[2], 'serial', ARGV[3])
for i = 4, #ARGV do
  redis.call('SADD', B .. ':devs', ARGV[i])
  redis.pcall('XGROUP', 'CREATE', S, ARGV[i], '$', 'MKSTREAM')
end
return 1
`);

export const UPDATE_ROSTER = script(`
local cur = redis.call('HGET', B .. ':c', 'serial')
if not cur or tonumber(ARGV[3]) <= tonumber(cur) then return 0 end
redis.call('HSET', B .. ':c', 'meta', ARGV[1], 'roster', ARGV[2], 'serial', ARGV[3])
local keep = {}
for i = 4, #ARGV do keep[ARGV[i]] = true end
for _, dev in ipairs(redis.call('SMEMBERS', B .. ':devs')) do
  if not keep[dev] then
    -- A leaving device holds nothing back: deliver the rest to it and ack everything for it.
    while true do
      local r = redis.call('XREADGROUP', 'GROUP', dev, 'c', 'COUNT', 1000, 'STREAMS', S, '>')
      if not r or not r[1] or #r[1][2] == 0 then break end
    end
    while true do
      local p = redis.call('XPENDING', S, dev, '-', '+', 1000)
      if #p == 0 then break end
      for _, e in ipairs(p) do
        if redis.call('XACK', S, dev, e[1]) == 1 then settle(e[1]) end
      end
    end
    redis.call('XGROUP', 'DESTROY', S, dev)
    redis.call('SREM', B .. ':devs', dev)
    redis.call('HDEL', B .. ':ek', dev)
  end
end
for i = 4, #ARGV do
  if redis.call('SADD', B .. ':devs', ARGV[i]) == 1 then
    redis.pcall('XGROUP', 'CREATE', S, ARGV[i], '$', 'MKSTREAM')
  end
end
return 1
`);

export const PUT_EPOCH_KEYS = script(`
if not campaignExists() then return 0 end
redis.call('HSET', B .. ':ek', ARGV[1], ARGV[2])
return 1
`);

export const ADD_INVITES = script(`
if not campaignExists() then return 0 end
for i = 1, #ARGV, 2 do redis.call('HSETNX', B .. ':inv', ARGV[i], ARGV[i + 1]) end
return 1
`);

export const REDEEM_INVITE = script(`
if not campaignExists() then return 'unknown' end
local e = redis.call('HGET', B .. ':inv', ARGV[1])
if not e or tonumber(e) <= tonumber(ARGV[4]) then return 'unknown' end
if redis.call('HEXISTS', B .. ':vol', ARGV[2]) == 1 then return 'pseudonym-taken' end
redis.call('HDEL', B .. ':inv', ARGV[1])
redis.call('HSET', B .. ':vol', ARGV[2], ARGV[3])
return 'redeemed'
`);

export const GET_VOLUNTEER = script(`
local v = redis.call('HGET', B .. ':vol', ARGV[1])
if not v then return {} end
return {v, redis.call('HEXISTS', B .. ':rev', ARGV[1])}
`);

export const LIST_VOLUNTEERS = script(`
return {redis.call('HVALS', B .. ':vol'), redis.call('HKEYS', B .. ':rev')}
`);

export const REVOKE_VOLUNTEER = script(`
if redis.call('HEXISTS', B .. ':vol', ARGV[1]) == 1 then redis.call('HSET', B .. ':rev', ARGV[1], '1') end
redis.call('DEL', B .. ':mq:' .. ARGV[1], B .. ':mm:' .. ARGV[1], B .. ':me:' .. ARGV[1])
return 1
`);

export const SUBMIT_ENVELOPE = script(`
local d = redis.call('HGET', B .. ':seen', ARGV[1])
if d then
  if d == ARGV[3] then return 'duplicate' end
  return 'conflict'
end
if not campaignExists() then return 'unknown-campaign' end
redis.call('HSET', B .. ':seen', ARGV[1], ARGV[3])
redis.call('ZADD', B .. ':seenz', ARGV[4], ARGV[1])
redis.call('HSET', B .. ':env', ARGV[1], ARGV[2])
append('e', ARGV[1], ARGV[4], '0', ARGV[5], ARGV[6])
return 'accepted'
`);

export const CREATE_PHOTO = script(`
local pm = B .. ':pm:' .. ARGV[1]
local n = redis.call('HGET', pm, 'n')
if n then
  if n == ARGV[2] then return 'exists' end
  return 'conflict'
end
if not campaignExists() then return 'unknown-campaign' end
redis.call('HSET', pm, 'n', ARGV[2], 'at', ARGV[3], 'st', '0', 'got', '0')
redis.call('ZADD', B .. ':ph', ARGV[3], ARGV[1])
return 'created'
`);

// A run of consecutive chunks (ARGV: photo id, first index, now, channel, campaign id, then the
// chunks): every check first (range, held chunks byte for byte), then every write, so a refused
// run writes nothing; one script, so one AOF write (and fsync, with appendfsync always).
// Returns {status, stored, duplicate, complete}.
export const PUT_PHOTO_CHUNKS = script(`
local pm = B .. ':pm:' .. ARGV[1]
local pc = B .. ':pc:' .. ARGV[1]
local meta = redis.call('HMGET', pm, 'n', 'st')
if not meta[1] then return {'unknown-photo', 0, 0, 0} end
local n = tonumber(meta[1])
local first = tonumber(ARGV[2])
local count = #ARGV - 5
if not first or first < 0 or first % 1 ~= 0 or count < 1 or first + count > n then
  return {'conflict', 0, 0, 0}
end
-- Delivered and deleted: a late retry cannot be checked any more, and must not re-deliver.
if meta[2] == '2' then return {'stored', 0, count, 1} end
local fields = {}
for i = 1, count do fields[i] = tostring(first + i - 1) end
local cur = redis.call('HMGET', pc, unpack(fields))
for i = 1, count do
  if cur[i] and cur[i] ~= ARGV[5 + i] then return {'conflict', 0, 0, 0} end
end
local stored = 0
for i = 1, count do
  if not cur[i] then
    redis.call('HSET', pc, fields[i], ARGV[5 + i])
    stored = stored + 1
  end
end
if stored == 0 then
  if meta[2] == '1' then return {'stored', 0, count, 1} end
  return {'stored', 0, count, 0}
end
if redis.call('HINCRBY', pm, 'got', stored) == n then
  local id = append('p', ARGV[1], ARGV[3], meta[1], ARGV[4], ARGV[5])
  redis.call('HSET', pm, 'st', '1', 'sid', id)
  return {'stored', stored, count - stored, 1}
end
return {'stored', stored, count - stored, 0}
`);

export const LIST_PHOTO_CHUNKS = script(`
local meta = redis.call('HMGET', B .. ':pm:' .. ARGV[1], 'n', 'st')
if not meta[1] then return {} end
return {meta[1], meta[2], redis.call('HKEYS', B .. ':pc:' .. ARGV[1])}
`);

export const GET_PHOTO_CHUNK = script(`
if redis.call('HGET', B .. ':pm:' .. ARGV[1], 'st') ~= '1' then return false end
return redis.call('HGET', B .. ':pc:' .. ARGV[1], ARGV[2])
`);

// Pending entries of the device's group first (delivered before, never acked: a reconnect
// resumes them), then new ones. Only entries after the cursor are returned.
export const READ_INBOX = script(`
local dev, limit, after = ARGV[1], tonumber(ARGV[2]), ARGV[3]
if limit < 1 or redis.call('SISMEMBER', B .. ':devs', dev) == 0 then return {} end
local out = {}
local function emit(e)
  local f = fieldsOf(e[2])
  local payload = ''
  if f.k == 'e' then payload = redis.call('HGET', B .. ':env', f.i) or '' end
  table.insert(out, {e[1], f.k, f.i, f.t, f.n, payload})
end
local from = '0-0'
if after ~= '' then from = after end
while #out < limit do
  local r = redis.call('XREADGROUP', 'GROUP', dev, 'c', 'COUNT', limit - #out, 'STREAMS', S, from)
  local entries = (r and r[1] and r[1][2]) or {}
  if #entries == 0 then break end
  for _, e in ipairs(entries) do
    from = e[1]
    -- An entry trimmed by retention leaves a bare id in the pending list: drop it.
    if e[2] then emit(e) else redis.call('XACK', S, dev, e[1]) end
  end
end
while #out < limit do
  local r = redis.call('XREADGROUP', 'GROUP', dev, 'c', 'COUNT', limit - #out, 'STREAMS', S, '>')
  local entries = (r and r[1] and r[1][2]) or {}
  if #entries == 0 then break end
  for _, e in ipairs(entries) do
    if after == '' or idgt(e[1], after) then emit(e) end
  end
end
return out
`);

export const ACK_INBOX = script(`
if redis.call('SISMEMBER', B .. ':devs', ARGV[1]) == 0 then return 0 end
local n = 0
for i = 2, #ARGV do
  if redis.call('XACK', S, ARGV[1], ARGV[i]) == 1 then
    n = n + 1
    settle(ARGV[i])
  end
end
return n
`);

export const PUT_MAILBOX = script(`
local p = ARGV[1]
if redis.call('HEXISTS', B .. ':vol', p) == 0 or redis.call('HEXISTS', B .. ':rev', p) == 1 then
  return 'unknown-volunteer'
end
if redis.call('HEXISTS', B .. ':mm:' .. p, ARGV[2]) == 1 then return 'duplicate' end
redis.call('HSET', B .. ':mm:' .. p, ARGV[2], ARGV[3])
redis.call('HSET', B .. ':me:' .. p, ARGV[2], ARGV[4])
redis.call('ZADD', B .. ':mq:' .. p, redis.call('INCR', B .. ':mseq'), ARGV[2])
return 'stored'
`);

export const READ_MAILBOX = script(`
local p, limit, now = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local out = {}
for _, m in ipairs(redis.call('ZRANGE', B .. ':mq:' .. p, 0, -1)) do
  if #out >= limit * 2 then break end
  if tonumber(redis.call('HGET', B .. ':me:' .. p, m) or '0') > now then
    table.insert(out, m)
    table.insert(out, redis.call('HGET', B .. ':mm:' .. p, m))
  end
end
return out
`);

export const ACK_MAILBOX = script(`
local p = ARGV[1]
local n = 0
for i = 2, #ARGV do
  if redis.call('ZREM', B .. ':mq:' .. p, ARGV[i]) == 1 then
    n = n + 1
    redis.call('HDEL', B .. ':mm:' .. p, ARGV[i])
    redis.call('HDEL', B .. ':me:' .. p, ARGV[i])
  end
end
return n
`);

// Retention: entries older than the cutoff go whatever their ack state (XRANGE to clean their
// payloads, then XTRIM MINID); never a trim by length, which would drop unacked entries.
export const EXPIRE_CAMPAIGN = script(`
local cutoff, now = tonumber(ARGV[1]), tonumber(ARGV[2])
local cutoffText = string.format('%d', cutoff)
local n = 0
local function dropPhoto(p)
  local sid = redis.call('HGET', B .. ':pm:' .. p, 'sid')
  redis.call('DEL', B .. ':pm:' .. p, B .. ':pc:' .. p)
  redis.call('ZREM', B .. ':ph', p)
  if sid then dropId(sid) end
end
while true do
  local batch = redis.call('XRANGE', S, '-', '(' .. cutoffText .. '-0', 'COUNT', 500)
  if #batch == 0 then break end
  for _, e in ipairs(batch) do
    local f = fieldsOf(e[2])
    if f.k == 'e' then redis.call('HDEL', B .. ':env', f.i) else dropPhoto(f.i) end
    dropId(e[1])
    n = n + 1
  end
end
redis.call('XTRIM', S, 'MINID', cutoffText)
for _, p in ipairs(redis.call('ZRANGEBYSCORE', B .. ':ph', '-inf', '(' .. cutoffText)) do
  dropPhoto(p)
  n = n + 1
end
local seen = redis.call('ZRANGEBYSCORE', B .. ':seenz', '-inf', '(' .. cutoffText)
for _, m in ipairs(seen) do redis.call('HDEL', B .. ':seen', m) end
redis.call('ZREMRANGEBYSCORE', B .. ':seenz', '-inf', '(' .. cutoffText)
n = n + #seen
local inv = redis.call('HGETALL', B .. ':inv')
for i = 1, #inv, 2 do
  if tonumber(inv[i + 1]) <= now then
    redis.call('HDEL', B .. ':inv', inv[i])
    n = n + 1
  end
end
for _, p in ipairs(redis.call('HKEYS', B .. ':vol')) do
  local me = redis.call('HGETALL', B .. ':me:' .. p)
  for i = 1, #me, 2 do
    if tonumber(me[i + 1]) <= now then
      redis.call('ZREM', B .. ':mq:' .. p, me[i])
      redis.call('HDEL', B .. ':mm:' .. p, me[i])
      redis.call('HDEL', B .. ':me:' .. p, me[i])
      n = n + 1
    end
  end
end
return n
`);

// Rate-limit buckets, all in one hash under their own key (own hash tag), field = keyed hash of
// the bucket's name, value = "tokens at capacity refill". One call per node per interval merges
// that node's draws (ARGV: at, then bucket/taken/level/capacity/refill quintuples), drops buckets
// that have refilled to capacity, and returns every stored one (field, value, ...).
// Fractions are kept exactly (%.17g). Same arithmetic as mergeBuckets in sqlite-store.ts.
export const MERGE_BUCKETS = `
local K = KEYS[1]
local at = tonumber(ARGV[1])
local function parse(v)
  local t, a, c, r = string.match(v, '^(%S+) (%S+) (%S+) (%S+)$')
  return {tonumber(t), tonumber(a), tonumber(c), tonumber(r)}
end
local function levelAt(b, time)
  local elapsed = time - b[2]
  if elapsed < 0 then elapsed = 0 end
  return math.min(b[3], b[1] + elapsed * b[4] / 1000)
end
local function format(b)
  return string.format('%.17g %d %.17g %.17g', b[1], b[2], b[3], b[4])
end
local stored = {}
local flat = redis.call('HGETALL', K)
for i = 1, #flat, 2 do stored[flat[i]] = parse(flat[i + 1]) end
local touched = {}
for i = 2, #ARGV, 5 do
  local name = ARGV[i]
  local taken, level, cap, rate = tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2]), tonumber(ARGV[i + 3]), tonumber(ARGV[i + 4])
  local cur = stored[name]
  local l = level
  local a = at
  if cur then
    l = levelAt(cur, at) - taken
    if cur[2] > a then a = cur[2] end
  end
  stored[name] = {l, a, cap, rate}
  touched[name] = true
end
local out = {}
for name, b in pairs(stored) do
  if levelAt(b, at) >= b[3] then
    redis.call('HDEL', K, name)
  else
    local v = format(b)
    if touched[name] then redis.call('HSET', K, name, v) end
    table.insert(out, name)
    table.insert(out, v)
  end
end
return out
`;
