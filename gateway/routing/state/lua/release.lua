-- Step 3 of a request, when an attempt ends: in-flight down, latency average, the circuit's
-- success or failure (circuit.lua is prepended at load time), the instance's token window
-- corrected by (actual - estimated).
--
-- KEYS[1]  the instance hash (inflight, ewma)   KEYS[2]  the instance's breaker hash
-- KEYS[3]  tokens window, current
-- ARGV[1]  a JSON object (named fields, decoded with cjson):
--   latency    the attempt's latency in ms (absent: none to average)
--   alpha      EWMA weight of the new latency
--   ok         true success, false failure (counts toward the circuit), absent neither
--   now        Unix seconds, as a string (stored as is in the breaker)
--   threshold  failures that open the circuit
--   recovery   seconds an opened circuit stays open
--   delta      token correction (actual - estimated)
--   ttl        window keys' TTL (seconds)
local inst, cb, t_cur = KEYS[1], KEYS[2], KEYS[3]
local a = cjson.decode(ARGV[1])

local n = redis.call('HINCRBY', inst, 'inflight', -1)
if n < 0 then redis.call('HSET', inst, 'inflight', 0) end
if a.latency then
  local x = a.latency
  local e = tonumber(redis.call('HGET', inst, 'ewma') or '')
  if e then x = a.alpha * x + (1 - a.alpha) * e end
  redis.call('HSET', inst, 'ewma', tostring(x))
end
redis.call('EXPIRE', inst, 3600)
if a.ok == true then
  circuit_success(cb, a.now)
elseif a.ok == false then
  circuit_failure(cb, a.now, a.threshold, a.recovery)
end
if a.delta ~= 0 then
  redis.call('INCRBY', t_cur, a.delta)
  redis.call('EXPIRE', t_cur, a.ttl)
end
return 1
