-- Step 3 of a request, when an attempt ends: in-flight down, latency average, the circuit's
-- success or failure (circuit.lua is prepended at load time), the instance's token window
-- corrected by (actual - estimated).
--
-- KEYS[1]  the instance hash (inflight, ewma)   KEYS[2]  the instance's breaker hash
-- KEYS[3]  tokens window, current
-- ARGV[1]  latency in ms ("" = none)            ARGV[2]  EWMA alpha
-- ARGV[3]  outcome: "1" success, "0" failure, "" neither (counts nothing for the circuit)
-- ARGV[4]  now (Unix seconds)                   ARGV[5]  failure threshold
-- ARGV[6]  recovery timeout (seconds)           ARGV[7]  token correction (actual - estimated)
-- ARGV[8]  window keys' TTL (seconds)
local inst, cb, t_cur = KEYS[1], KEYS[2], KEYS[3]
local latency, alpha, outcome, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local threshold, recovery, delta, ttl = ARGV[5], ARGV[6], ARGV[7], ARGV[8]

local n = redis.call('HINCRBY', inst, 'inflight', -1)
if n < 0 then redis.call('HSET', inst, 'inflight', 0) end
if latency ~= '' then
  local x = tonumber(latency)
  local e = tonumber(redis.call('HGET', inst, 'ewma') or '')
  if e then x = tonumber(alpha) * x + (1 - tonumber(alpha)) * e end
  redis.call('HSET', inst, 'ewma', tostring(x))
end
redis.call('EXPIRE', inst, 3600)
if outcome == '1' then
  circuit_success(cb, now)
elseif outcome == '0' then
  circuit_failure(cb, now, threshold, recovery)
end
if delta ~= '0' then
  redis.call('INCRBY', t_cur, delta)
  redis.call('EXPIRE', t_cur, ttl)
end
return 1
