-- Step 2 of a request, per attempt: take one instance (instance_acquire in limits.lua).
--
-- KEYS[1]  the instance's breaker hash          KEYS[2]  the instance hash (inflight, ewma)
-- KEYS[3]  requests window, current             KEYS[4]  requests window, previous
-- KEYS[5]  tokens window, current               KEYS[6]  tokens window, previous
-- ARGV[1]  now (Unix seconds)                   ARGV[2]  stale trial age (seconds)
-- ARGV[3]  instance rpm limit (-1 = none)       ARGV[4]  instance tpm limit (-1 = none)
-- ARGV[5]  estimated tokens of the request      ARGV[6]  frac (position in the window)
-- ARGV[7]  window keys' TTL (seconds)           ARGV[8]  force: "1" skips the circuit check
--
-- Returns the ACQUIRE_* code.
local now, stale = tonumber(ARGV[1]), tonumber(ARGV[2])
local rpm, tpm, cost = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local frac, ttl, force = tonumber(ARGV[6]), ARGV[7], ARGV[8]
return instance_acquire(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6],
  now, stale, rpm, tpm, cost, frac, ttl, force)
