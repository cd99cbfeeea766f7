-- Rate-limit windows and the per-attempt acquire, shared by view.lua and acquire.lua (this
-- file is prepended to them at load time, after providers/circuit/lua/circuit.lua, whose
-- circuit_allow it calls).
--
-- A limit is a sliding window approximated by two fixed windows: the previous one weighted
-- by how much of it still overlaps (``frac`` is how far into the current window we are).
-- Window keys hold plain counters: "gw:{v:<key id>}:rl:<r|t>:<window index>" for a virtual
-- key, "gw:{i:<instance id>}:rl:<r|t>:<window index>" for an instance (windows.py).

-- The sliding count of a limit, and the current and previous windows' raw counts.
local function rl_used(cur, prev, frac)
  local c = tonumber(redis.call('GET', cur) or '0')
  local p = tonumber(redis.call('GET', prev) or '0')
  return p * (1 - frac) + c, c, p
end

-- Would ``cost`` more go over ``limit`` (-1 = no limit)? An empty window always admits one
-- request, however large, so that a request bigger than the limit is not refused forever.
local function rl_over(used, limit, cost)
  if limit < 0 then return false end
  if used <= 0 then return false end
  return used + cost > limit
end

-- Take an instance for one attempt: re-check its limits, take its circuit (the half-open
-- trial is handed out here, atomically across processes; skipped with force = '1'), count
-- the request against its windows and its in-flight count. Returns an ACQUIRE_* code:
-- 1 ok, 0 circuit open, 2 requests-per-minute limit, 3 tokens-per-minute limit.
local function instance_acquire(cb, inst, r_cur, r_prev, t_cur, t_prev, now, stale, rpm, tpm,
                                cost, frac, ttl, force)
  local ru = rl_used(r_cur, r_prev, frac)
  if rl_over(ru, rpm, 1) then return 2 end
  local tu = rl_used(t_cur, t_prev, frac)
  if rl_over(tu, tpm, cost) then return 3 end
  if force ~= '1' and circuit_allow(cb, now, stale) == 0 then return 0 end
  redis.call('INCR', r_cur)
  redis.call('EXPIRE', r_cur, ttl)
  redis.call('INCRBY', t_cur, cost)
  redis.call('EXPIRE', t_cur, ttl)
  redis.call('HINCRBY', inst, 'inflight', 1)
  redis.call('EXPIRE', inst, 3600)
  return 1
end
