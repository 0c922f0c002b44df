-- meter: decide one access check and record it, atomically, in one round trip.
-- Compact layout (layout.py, docs/benchmarks.md): subjects share bucket keys; articles are 64-bit hashes.
-- The arguments are built by check.py's ScriptArgs, which lists them in this order.
-- KEYS[1] state bucket hash: field reader id -> packed state: 1 byte "0"/"1" (verified), 4 bytes
--         subscription end (big-endian epoch s), then the 8-byte hashes of the live session ids
-- KEYS[2] unlocks of the meter that counts (each of a policy's meters has keys of its own, chosen by
--         check.py: the script is the same for every meter). Calendar periods: bucket hash, field
--         subject -> concatenated 8-byte article hashes ("" = loaded, nothing unlocked). Rolling
--         windows: a string of 12-byte records (hash, time).
-- KEYS[3] the day's answer counts of the bucket (stats): field reason -> count, for recording checks
-- KEYS[4] the ledger journal of the bucket (a list): each unlock answered, until the worker has it in SQL
-- KEYS[5] (optional, anonymous AMP reader ids only) the rid's link to a reader: "reader_id:session_id"
-- ARGV: 1 kind ("r" reader | "a" anonymous), 2 session id hash (8 bytes), 3 now (epoch s),
--       4 article hash (8 bytes), 5 class, 6 record ("1"|"0"), 7..9 quota anonymous/registered/verified
--       of the meter that counts, 10 calendar: when the unlock bucket expires (epoch s); rolling: ttl
--       (s), 11 rolling window (s, 0 for calendar periods), 12 state bucket ttl (s), 13 reader state
--       fresh from SQL, replacing the cache ("" = none), 14 "1" when ARGV[16] carries the unlocks to
--       load when missing, 15 the subject's field in the bucket hashes, 16 the packed unlocks to load,
--       17 when the stats key expires (epoch s), 18 counts of answers given without this script
--       ("reason=n;..."), added to KEYS[3] first (the caller sends them once), 19 the ledger row of an
--       unlock, less its time ("period\tsubject\tarticle id", then "\tmeter" for a named meter; ""
--       when this check cannot unlock): pushed to KEYS[4] as "now\t" .. ARGV[19] with the unlock
--       itself, so an answered unlock is never only in the meter, 20 the field of KEYS[3] that counts
--       the walls of the subject's variant of the meter's experiment ("" = none): a recording check
--       refused by the quota adds one to it
-- Returns {reason, state, used, oldest, sub_until}: reason is the answer's (free_content, subscriber,
-- already_unlocked, unlocked_now, would_unlock, or the refusal: subscription_required,
-- registration_required, verification_required, quota_exhausted); or {"need_state"|"need_unlocks", ...};
-- {"revoked", ...}; {"linked", "reader_id:session_id", 0, 0, 0} for a linked rid. A recording check
-- counts its reason in KEYS[3].
local kind, sid, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
local article, class, record = ARGV[4], ARGV[5], ARGV[6] == "1"
local window = tonumber(ARGV[11])
local field = ARGV[15]

local function u32(s, i)
  local a, b, c, d = string.byte(s, i, i + 3)
  return ((a * 256 + b) * 256 + c) * 256 + d
end

local function be32(n)
  return string.char(math.floor(n / 16777216) % 256, math.floor(n / 65536) % 256, math.floor(n / 256) % 256, n % 256)
end

local function has_session(blob)
  for i = 6, #blob - 7, 8 do
    if string.sub(blob, i, i + 7) == sid then return true end
  end
  return false
end

local function stats_expiry()
  if redis.call("TTL", KEYS[3]) < 0 then redis.call("EXPIREAT", KEYS[3], tonumber(ARGV[17])) end
end

if ARGV[18] ~= "" then
  for reason, n in string.gmatch(ARGV[18], "([%w_]+)=(%d+)") do redis.call("HINCRBY", KEYS[3], reason, tonumber(n)) end
  stats_expiry()
end

if KEYS[5] then
  local link = redis.call("GET", KEYS[5])
  if link then return {"linked", link, 0, 0, 0} end
end

local state, sub_until = "anonymous", 0
if kind == "r" then
  local blob
  if ARGV[13] ~= "" then
    -- Only sent after a miss: fresh from SQL, so it replaces the cache. The bucket expires as a whole.
    blob = ARGV[13]
    redis.call("HSET", KEYS[1], field, blob)
    if redis.call("TTL", KEYS[1]) < 0 then redis.call("EXPIRE", KEYS[1], tonumber(ARGV[12])) end
    if not has_session(blob) then return {"revoked", "", 0, 0, 0} end
  else
    blob = redis.call("HGET", KEYS[1], field)
    -- Missing cache, or a session newer than the cache: ask for the state from SQL.
    if not blob or not has_session(blob) then return {"need_state", "", 0, 0, 0} end
  end
  sub_until = u32(blob, 2)
  if sub_until > now then state = "subscriber"
  elseif string.sub(blob, 1, 1) == "1" then state = "verified"
  else state = "registered" end
end

local size = 8
if window > 0 then size = 12 end

local function store(packed)
  if window > 0 then
    redis.call("SET", KEYS[2], packed, "EX", tonumber(ARGV[10]))
  else
    redis.call("HSET", KEYS[2], field, packed)
    redis.call("EXPIREAT", KEYS[2], tonumber(ARGV[10]))
  end
end

local packed
if window > 0 then packed = redis.call("GET", KEYS[2]) else packed = redis.call("HGET", KEYS[2], field) end
if not packed then
  if ARGV[14] ~= "1" then return {"need_unlocks", state, 0, 0, sub_until} end
  packed = ARGV[16]
  store(packed)
end

-- Rolling windows: forget unlocks that left the window; find the oldest that remains.
local oldest = 0
if window > 0 then
  local kept = {}
  for i = 1, #packed - 11, 12 do
    local t = u32(packed, i + 8)
    if t > now - window then
      kept[#kept + 1] = string.sub(packed, i, i + 11)
      if oldest == 0 or t < oldest then oldest = t end
    end
  end
  local pruned = table.concat(kept)
  if pruned ~= packed then
    packed = pruned
    store(packed)
  end
end

local used = math.floor(#packed / size)
local function answer(reason)
  if record then
    redis.call("HINCRBY", KEYS[3], reason, 1)
    stats_expiry()
  end
  return {reason, state, used, oldest, sub_until}
end

local qa, qr, qv = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
-- What would help a refused reader (the same rule as check.py's refusal_reason).
local function refusal()
  if class == "premium" then return "subscription_required" end
  if state == "anonymous" and math.max(qr, qv) > qa then return "registration_required" end
  if state == "registered" and qv > qr then return "verification_required" end
  return "quota_exhausted"
end

if class == "free" then return answer("free_content") end
if state == "subscriber" then return answer("subscriber") end
if class == "premium" then return answer(refusal()) end
for i = 1, #packed - size + 1, size do
  if string.sub(packed, i, i + 7) == article then return answer("already_unlocked") end
end

local limit = qv
if state == "anonymous" then limit = qa elseif state == "registered" then limit = qr end
if used >= limit then
  if record and ARGV[20] and ARGV[20] ~= "" then redis.call("HINCRBY", KEYS[3], ARGV[20], 1) end
  return answer(refusal())
end
if not record then return {"would_unlock", state, used, oldest, sub_until} end

if window > 0 then store(packed .. article .. be32(now)) else store(packed .. article) end
if ARGV[19] and ARGV[19] ~= "" then redis.call("RPUSH", KEYS[4], ARGV[3] .. "\t" .. ARGV[19]) end
if oldest == 0 then oldest = now end
used = used + 1
return answer("unlocked_now")
