-- meter: a gifted read, decided and recorded atomically in one round trip, on the gift's own keys only.
-- The arguments are built by hot.py's `read`, which lists them in this order.
-- KEYS[1] the gift's state hash: field s -> packed: 8-byte article hash, 4-byte expiry (big-endian epoch
--         s), 2-byte device limit, "0"/"1" revoked; field c -> gifted reads given
-- KEYS[2] the set of devices (8-byte hashes of "r:<reader id>" / "a:<anonymous id>") that opened it
-- ARGV: 1 now (epoch s), 2 the asked article's hash, 3 the device's hash, 4 record ("1"|"0"),
--       5 the packed state fresh from SQL, stored only if still missing ("" = none), 6 the devices
--       from SQL (concatenated hashes, with 5), 7 how long the keys outlive the gift (s)
-- Returns {outcome, devices}: outcome is gift (the device is in, or would get in with record "0"),
-- gift_new (a new device came in: the caller writes it to SQL), expired, revoked, invalid (another
-- article), device_limit; or {"need_gift", 0} when the state is missing.
local now, article, device, record = tonumber(ARGV[1]), ARGV[2], ARGV[3], ARGV[4] == "1"

local function u32(s, i)
  local a, b, c, d = string.byte(s, i, i + 3)
  return ((a * 256 + b) * 256 + c) * 256 + d
end

local s = redis.call("HGET", KEYS[1], "s")
if not s then
  if ARGV[5] == "" then return {"need_gift", 0} end
  redis.call("HSETNX", KEYS[1], "s", ARGV[5])  -- a revocation written meanwhile wins
  s = redis.call("HGET", KEYS[1], "s")
  local packed = ARGV[6]
  for i = 1, #packed - 7, 8 do redis.call("SADD", KEYS[2], string.sub(packed, i, i + 7)) end
  local until_ = u32(s, 9) + tonumber(ARGV[7])
  redis.call("EXPIREAT", KEYS[1], until_)
  if #packed > 0 then redis.call("EXPIREAT", KEYS[2], until_) end
end

if string.sub(s, 15, 15) == "1" then return {"revoked", 0} end
if now >= u32(s, 9) then return {"expired", 0} end
if string.sub(s, 1, 8) ~= article then return {"invalid", 0} end

if redis.call("SISMEMBER", KEYS[2], device) == 1 then
  if record then redis.call("HINCRBY", KEYS[1], "c", 1) end
  return {"gift", redis.call("SCARD", KEYS[2])}
end
local count = redis.call("SCARD", KEYS[2])
local limit = string.byte(s, 13) * 256 + string.byte(s, 14)
if count >= limit then return {"device_limit", count} end
if not record then return {"gift", count} end
redis.call("SADD", KEYS[2], device)
if redis.call("TTL", KEYS[2]) < 0 then redis.call("EXPIREAT", KEYS[2], u32(s, 9) + tonumber(ARGV[7])) end
redis.call("HINCRBY", KEYS[1], "c", 1)
return {"gift_new", count + 1}
