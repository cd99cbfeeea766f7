-- Step 1 of a request: consume the virtual key's rate limit and read, for every candidate
-- instance, its circuit, in-flight count, latency average, rate-limit windows and cooling
-- account groups, plus the alias's round-robin counter; optionally take the lone candidate
-- for its first attempt (step 2) in the same round trip. One script, so one round trip and
-- one reply to parse whatever the number of candidates. circuit.lua and limits.lua are
-- prepended at load time.
--
-- KEYS, in order:
--   the key's 4 windows (requests cur, prev; tokens cur, prev), if key_limited;
--   the alias's round-robin counter, if round_robin;
--   per candidate: breaker hash, instance hash, its 4 windows, one cooling key per group.
-- ARGV[1]: a JSON object (named fields, decoded with cjson):
--   frac         position in the current window (0..1)
--   consume      true: count the request (key windows, round-robin turn); false: only read
--   key_limited  true: the first 4 KEYS are the key's windows
--   key_rpm, key_tpm  the key's limits (-1 = none)
--   cost         estimated tokens of the request
--   ttl          window keys' TTL (seconds)
--   round_robin  true: a round-robin counter key follows the key's windows
--   acquire      true: also take the lone candidate for its first attempt
--   now          Unix seconds
--   stale        age (seconds) after which a half-open trial is given up
--   inst_rpm, inst_tpm  the lone candidate's limits (-1 = none)
--   groups       per candidate, its number of account groups (so of cooling keys)
--
-- Returns {key verdict {ok, which, cur, prev}, rr, per candidate {state, failures, retry_at,
-- inflight, ewma, r_cur, r_prev, t_cur, t_prev, cooling pttl...}[, ACQUIRE_* code if
-- acquire]}; only the verdict when the key is over a limit (then nothing was counted).
local a = cjson.decode(ARGV[1])
local frac, cost, ttl, groups = a.frac, a.cost, a.ttl, a.groups
local k = 1
if a.key_limited then
  if a.consume then
    local ru, rc, rp = rl_used(KEYS[1], KEYS[2], frac)
    if rl_over(ru, a.key_rpm, 1) then return {{0, 1, rc, rp}} end
    local tu, tc, tp = rl_used(KEYS[3], KEYS[4], frac)
    if rl_over(tu, a.key_tpm, cost) then return {{0, 2, tc, tp}} end
    redis.call('INCR', KEYS[1])
    redis.call('EXPIRE', KEYS[1], ttl)
    redis.call('INCRBY', KEYS[3], cost)
    redis.call('EXPIRE', KEYS[3], ttl)
  end
  k = 5
end
local rr = 0
if a.round_robin then
  if a.consume then
    rr = redis.call('INCR', KEYS[k])
  else
    rr = tonumber(redis.call('GET', KEYS[k]) or '0')
  end
  k = k + 1
end
local out = {{1, 0, 0, 0}, rr}
local first = k
for i = 1, #groups do
  local cb = redis.call('HMGET', KEYS[k], 'state', 'failures', 'retry_at')
  local inst = redis.call('HMGET', KEYS[k + 1], 'inflight', 'ewma')
  local w = redis.call('MGET', KEYS[k + 2], KEYS[k + 3], KEYS[k + 4], KEYS[k + 5])
  k = k + 6
  local entry = {cb[1], cb[2], cb[3], inst[1], inst[2], w[1], w[2], w[3], w[4]}
  for g = 1, groups[i] do
    entry[9 + g] = redis.call('PTTL', KEYS[k])
    k = k + 1
  end
  out[2 + i] = entry
end
if a.acquire then
  out[#out + 1] = instance_acquire(KEYS[first], KEYS[first + 1], KEYS[first + 2],
    KEYS[first + 3], KEYS[first + 4], KEYS[first + 5], a.now, a.stale, a.inst_rpm, a.inst_tpm,
    cost, frac, ttl, '0')
end
return out
