-- Step 2 of a request, per attempt: take one instance (instance_acquire in limits.lua).
--
-- KEYS[1]  the instance's breaker hash          KEYS[2]  the instance hash (inflight, ewma)
-- KEYS[3]  requests window, current             KEYS[4]  requests window, previous
-- KEYS[5]  tokens window, current               KEYS[6]  tokens window, previous
-- ARGV[1]  a JSON object (named fields, decoded with cjson): now (Unix seconds), stale (age
--          after which a half-open trial is given up), rpm and tpm (the instance's limits, -1 =
--          none), cost (estimated tokens), frac (position in the window), ttl (window keys'
--          TTL), force (true: skip the circuit check)
--
-- Returns the ACQUIRE_* code.
local a = cjson.decode(ARGV[1])
return instance_acquire(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6],
  a.now, a.stale, a.rpm, a.tpm, a.cost, a.frac, a.ttl, a.force and '1' or '0')
