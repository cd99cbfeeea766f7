-- Circuit breaker functions, the same state machine as providers.circuit.local's twin.
-- This file is a library: it is prepended to every script that touches a breaker (its own
-- probe.lua and the routing state's view, acquire and release scripts), so that a breaker
-- step runs in the same atomic script as the checks around it.
--
-- One hash per instance (key "gw:{i:<instance id>}:cb"), fields: state ("closed", "open",
-- "half_open"; absent = closed), failures, opened_at, retry_at, last_success, last_failure,
-- trial_at (when the half-open trial was handed out; "" = not handed out yet).
-- Times are Unix seconds, stored in the string form the caller sent.

-- May a request go to the instance now? Hands out the one half-open trial (a trial that never
-- reported back is given up after ``stale`` seconds). Returns 1 (yes) or 0.
local function circuit_allow(key, now, stale)
  local h = redis.call('HMGET', key, 'state', 'retry_at', 'trial_at')
  local state = h[1]
  if (not state) or state == 'closed' then return 1 end
  if state == 'open' then
    if now < tonumber(h[2] or '0') then return 0 end
    redis.call('HSET', key, 'state', 'half_open', 'trial_at', tostring(now))
    return 1
  end
  local trial = h[3]
  if (not trial) or trial == '' or now - tonumber(trial) >= stale then
    redis.call('HSET', key, 'trial_at', tostring(now))
    return 1
  end
  return 0
end

-- A success: closed, count reset.
local function circuit_success(key, now)
  redis.call('HSET', key, 'state', 'closed', 'failures', 0, 'last_success', now,
             'opened_at', '', 'retry_at', '', 'trial_at', '')
  return 1
end

-- A failure (of a request or a health probe): opens the circuit at ``threshold`` consecutive
-- failures, reopens a half-open or open one for another ``recovery`` seconds. Returns the
-- state after it.
local function circuit_failure(key, now_s, threshold, recovery)
  local now = tonumber(now_s)
  local state = redis.call('HGET', key, 'state') or 'closed'
  local failures = redis.call('HINCRBY', key, 'failures', 1)
  redis.call('HSET', key, 'last_failure', now_s)
  if state == 'half_open' or state == 'open'
     or (state == 'closed' and failures >= tonumber(threshold)) then
    redis.call('HSET', key, 'state', 'open', 'opened_at', now_s,
               'retry_at', tostring(now + tonumber(recovery)), 'trial_at', '')
    return 'open'
  end
  return state
end
