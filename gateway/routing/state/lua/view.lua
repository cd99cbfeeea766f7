-- Step 1 of a request: consume the virtual key's rate limit and read, for every candidate
-- instance, its circuit, in-flight count, latency average, rate-limit windows and cooling
-- account groups, plus the alias's round-robin counter; optionally take the lone candidate
-- for its first attempt (step 2) in the same round trip. One script, so one round trip and
-- one reply to parse whatever the number of candidates. circuit.lua and limits.lua are
-- prepended at load time.
--
-- KEYS, in order:
--   the key's 4 windows (requests cur, prev; tokens cur, prev), if key_limited = "1";
--   the alias's round-robin counter, if round_robin = "1";
--   per candidate: breaker hash, instance hash, its 4 windows, one cooling key per group.
-- ARGV:
--   [1] frac (position in the window)      [2] consume: "1" count the request, "0" only read
--   [3] key_limited: "1"/"0"               [4] key rpm limit (-1 = none)
--   [5] key tpm limit (-1 = none)          [6] estimated tokens of the request
--   [7] window keys' TTL (seconds)         [8] round_robin: "1"/"0"
--   [9] number of candidates               [10] acquire: "1" take the lone candidate
--   [11] now (Unix seconds)                [12] stale trial age (seconds)
--   [13] lone candidate's rpm limit        [14] lone candidate's tpm limit (-1 = none)
--   [15...] one account-group count per candidate
--
-- Returns {key verdict {ok, which, cur, prev}, rr, per candidate {state, failures, retry_at,
-- inflight, ewma, r_cur, r_prev, t_cur, t_prev, cooling pttl...}[, ACQUIRE_* code if
-- acquire]}; only the verdict when the key is over a limit (then nothing was counted).
local frac = tonumber(ARGV[1])
local consume = ARGV[2] == '1'
local key_limited = ARGV[3] == '1'
local key_rpm, key_tpm, cost, ttl = tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6], ARGV[7]
local round_robin = ARGV[8] == '1'
local n_candidates, acquire = tonumber(ARGV[9]), ARGV[10] == '1'
local now, stale = tonumber(ARGV[11]), tonumber(ARGV[12])
local inst_rpm, inst_tpm = tonumber(ARGV[13]), tonumber(ARGV[14])
local GROUP_COUNTS = 14  -- ARGV[GROUP_COUNTS + i]: candidate i's number of groups

local k = 1
if key_limited then
  if consume then
    local ru, rc, rp = rl_used(KEYS[1], KEYS[2], frac)
    if rl_over(ru, key_rpm, 1) then return {{0, 1, rc, rp}} end
    local tu, tc, tp = rl_used(KEYS[3], KEYS[4], frac)
    if rl_over(tu, key_tpm, tonumber(cost)) then return {{0, 2, tc, tp}} end
    redis.call('INCR', KEYS[1])
    redis.call('EXPIRE', KEYS[1], ttl)
    redis.call('INCRBY', KEYS[3], cost)
    redis.call('EXPIRE', KEYS[3], ttl)
  end
  k = 5
end
local rr = 0
if round_robin then
  if consume then
    rr = redis.call('INCR', KEYS[k])
  else
    rr = tonumber(redis.call('GET', KEYS[k]) or '0')
  end
  k = k + 1
end
local out = {{1, 0, 0, 0}, rr}
local first = k
for i = 1, n_candidates do
  local cb = redis.call('HMGET', KEYS[k], 'state', 'failures', 'retry_at')
  local inst = redis.call('HMGET', KEYS[k + 1], 'inflight', 'ewma')
  local w = redis.call('MGET', KEYS[k + 2], KEYS[k + 3], KEYS[k + 4], KEYS[k + 5])
  k = k + 6
  local entry = {cb[1], cb[2], cb[3], inst[1], inst[2], w[1], w[2], w[3], w[4]}
  for g = 1, tonumber(ARGV[GROUP_COUNTS + i]) do
    entry[9 + g] = redis.call('PTTL', KEYS[k])
    k = k + 1
  end
  out[2 + i] = entry
end
if acquire then
  out[#out + 1] = instance_acquire(KEYS[first], KEYS[first + 1], KEYS[first + 2],
    KEYS[first + 3], KEYS[first + 4], KEYS[first + 5], now, stale, inst_rpm, inst_tpm,
    tonumber(cost), frac, ttl, '0')
end
return out
