-- meter: decide one access check and record it, atomically.
-- KEYS[1] reader state hash (never exists for anonymous subjects)
-- KEYS[2] unlocks hash of the subject for the period: article id -> unlock time; field "" marks it loaded
-- ARGV: 1 kind ("r" reader | "a" anonymous), 2 session id, 3 now (epoch s), 4 article id,
--       5 class, 6 record ("1"|"0"), 7..9 quota anonymous/registered/verified,
--       10 unlocks ttl (s), 11 rolling window (s, 0 for calendar periods), 12 state ttl (s),
--       13 reader state fresh from SQL, replacing the cache ("" = none): "verified|sub_until|sid,sid,..",
--       14 "1" when ARGV[15..] carry the unlocks to load when missing (article, time, article, time, ...)
-- Returns {code, state, used, oldest, sub_until}
local kind, sid, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
local article, class, record = ARGV[4], ARGV[5], ARGV[6] == "1"
local window = tonumber(ARGV[11])

local state, sub_until = "anonymous", 0
if kind == "r" then
  -- ARGV[13] is only sent after a miss: it is fresh from SQL, so it replaces the cache.
  if ARGV[13] ~= "" then
    local verified, sub, sids = string.match(ARGV[13], "^([01])|(%d+)|(.*)$")
    redis.call("DEL", KEYS[1])
    redis.call("HSET", KEYS[1], "v", verified, "sub", sub)
    for s in string.gmatch(sids, "[^,]+") do redis.call("HSET", KEYS[1], "s:" .. s, "1") end
    redis.call("EXPIRE", KEYS[1], tonumber(ARGV[12]))
    if redis.call("HEXISTS", KEYS[1], "s:" .. sid) == 0 then return {"revoked", "", 0, 0, 0} end
  elseif redis.call("HEXISTS", KEYS[1], "s:" .. sid) == 0 then
    -- Missing cache, or a session newer than the cache: ask for the state from SQL.
    return {"need_state", "", 0, 0, 0}
  end
  local st = redis.call("HMGET", KEYS[1], "v", "sub")
  sub_until = tonumber(st[2]) or 0
  if sub_until > now then state = "subscriber"
  elseif st[1] == "1" then state = "verified"
  else state = "registered" end
end

if redis.call("EXISTS", KEYS[2]) == 0 then
  if ARGV[14] ~= "1" then return {"need_unlocks", state, 0, 0, sub_until} end
  redis.call("HSET", KEYS[2], "", "1")
  for i = 15, #ARGV, 2 do redis.call("HSET", KEYS[2], ARGV[i], ARGV[i + 1]) end
  redis.call("EXPIRE", KEYS[2], tonumber(ARGV[10]))
end

-- Rolling windows: forget unlocks that left the window; find the oldest that remains.
local oldest = 0
if window > 0 then
  local all = redis.call("HGETALL", KEYS[2])
  for i = 1, #all, 2 do
    if all[i] ~= "" then
      local t = tonumber(all[i + 1])
      if t <= now - window then redis.call("HDEL", KEYS[2], all[i])
      elseif oldest == 0 or t < oldest then oldest = t end
    end
  end
end

local used = redis.call("HLEN", KEYS[2]) - 1
local function answer(code) return {code, state, used, oldest, sub_until} end

if class == "free" then return answer("free_content") end
if state == "subscriber" then return answer("subscriber") end
if class == "premium" then return answer("refused_premium") end
if redis.call("HEXISTS", KEYS[2], article) == 1 then return answer("already_unlocked") end

local limit = tonumber(ARGV[9])
if state == "anonymous" then limit = tonumber(ARGV[7]) elseif state == "registered" then limit = tonumber(ARGV[8]) end
if used >= limit then return answer("refused_quota") end
if not record then return answer("would_unlock") end

redis.call("HSET", KEYS[2], article, now)
redis.call("EXPIRE", KEYS[2], tonumber(ARGV[10]))
if oldest == 0 then oldest = now end
used = used + 1
return answer("unlocked_now")
