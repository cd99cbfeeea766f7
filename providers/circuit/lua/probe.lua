-- A health probe's result fed into one breaker (prefixed with circuit.lua at load time).
--
-- KEYS[1]  the breaker hash
-- ARGV[1]  now (Unix seconds, stored as sent)
-- ARGV[2]  "1" the probe succeeded, "0" it failed
-- ARGV[3]  failure threshold
-- ARGV[4]  recovery timeout (seconds)
--
-- Returns the state after the probe. A failed probe counts like a failed request. A
-- successful probe of an open circuit makes it half-open (the next request is the trial); of a
-- closed one, resets the count; of a half-open one, only notes the success: the trial decides.
local key, now_s = KEYS[1], ARGV[1]
if ARGV[2] ~= '1' then
  return circuit_failure(key, now_s, ARGV[3], ARGV[4])
end
local state = redis.call('HGET', key, 'state') or 'closed'
if state == 'closed' then
  circuit_success(key, now_s)
  return 'closed'
end
redis.call('HSET', key, 'last_success', now_s)
if state == 'open' then
  redis.call('HSET', key, 'state', 'half_open', 'trial_at', '')
end
return 'half_open'
