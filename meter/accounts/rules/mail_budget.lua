-- meter: the mail budget of one address on one site (meter/accounts/rules/mail_budget.py).
-- KEYS[1] a sorted set: member = one mail's id, score = when it was sent (epoch s)
-- ARGV: 1 now (epoch s), 2 spend ("1": count a mail when the budget allows one; "0": only look),
--       3 the mail's id, then pairs of (amount, window seconds): "1 per 3 minutes;5 per day" is 1 180 5 86400
-- Returns the seconds to wait as a string ("0": a mail may go, and was counted when spending).
local key, now, spend, id = KEYS[1], tonumber(ARGV[1]), ARGV[2] == "1", ARGV[3]
local wait, longest = 0, 0
for i = 4, #ARGV, 2 do
  local amount, window = tonumber(ARGV[i]), tonumber(ARGV[i + 1])
  if window > longest then longest = window end
  local inside = redis.call("ZRANGEBYSCORE", key, "(" .. (now - window), "+inf", "WITHSCORES")
  local count = #inside / 2
  if count >= amount then
    -- the (count - amount + 1)th oldest mail must leave the window before another may go
    local leaves = tonumber(inside[2 * (count - amount + 1)]) + window - now
    if leaves > wait then wait = leaves end
  end
end
if wait > 0 then return tostring(wait) end
if spend then
  redis.call("ZREMRANGEBYSCORE", key, "-inf", now - longest)
  redis.call("ZADD", key, now, id)
  redis.call("EXPIRE", key, math.ceil(longest) + 1)
end
return "0"
