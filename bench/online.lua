-- wrk script for the million_online scenario (bench/run.sh): an open-loop
-- load of one kind, paced by the clock, not by the replies. Configured by
-- environment:
--   BENCH_KIND         heartbeat: the tokens in turn from the first (POST
--                      /api/users/me/heartbeat/); change: a random user of
--                      the tokens going away (POST /api/users/me/online-status/);
--                      read: the online page and a random user's status in
--                      turn (staff token)
--   BENCH_RATE         requests a second offered
--   BENCH_TOKENS       the users' tokens, one a line (bench/bench_db.py
--                      primes their users in this order)
--   BENCH_STAFF_TOKEN  a staff token, for the reads
--   BENCH_USERS        highest user id for the status reads
-- Pacing: the thread keeps one schedule of send times, 1 / (offered rate)
-- apart; delay() gives each connection that becomes free the next slot. When
-- every connection is busy the slots fall behind the clock and are sent at
-- once: the achieved rate then falls short of the offered one, and the
-- lateness of each slot (when a connection became free to take it, less
-- the slot) is the wait for a free connection that wrk's own latency,
-- measured from the send, leaves out. A slot still ahead when it is taken
-- counts as on time: if wrk itself is then scheduled late (a neighbour on
-- its core), that is the client's delay, not the server's.
local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk, bench_timespec *ts);
]]
local ts = ffi.new("bench_timespec")
local function now_us()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000000 + tonumber(ts.tv_nsec) / 1000
end

local kind = os.getenv("BENCH_KIND") or "heartbeat"
local rate = tonumber(os.getenv("BENCH_RATE") or "1000")
local users = tonumber(os.getenv("BENCH_USERS") or "1000")
local staff = os.getenv("BENCH_STAFF_TOKEN") or ""
local step_us = 1000000 / rate
local tokens = {}
if kind ~= "read" then
  for line in io.lines(os.getenv("BENCH_TOKENS")) do tokens[#tokens + 1] = line end
end

-- per thread (wrk gives each thread its own Lua state); done() reads them
next_slot = nil
seq = 0
-- lateness histogram: bucket b counts sends 2^(b-1)..2^b - 1 ms late (b = 0: < 1 ms)
late = {}
for b = 0, 20 do late[b] = 0 end
late_max_us = 0

local function hdr(token, body)
  local h = { ["Authorization"] = "Token " .. token }
  if body then h["Content-Type"] = "application/json" end
  return h
end

init = function(args)
  math.randomseed(os.time())
end

local function note_late(l)
  if l < 0 then l = 0 end
  if l > late_max_us then late_max_us = l end
  local ms, b = l / 1000, 0
  while ms >= 1 and b < 20 do ms = ms / 2; b = b + 1 end
  late[b] = late[b] + 1
end

delay = function()
  local now = now_us()
  if not next_slot then next_slot = now end
  local slot = next_slot
  next_slot = next_slot + step_us
  local d = slot - now
  note_late(-d)
  if d <= 0 then return 0 end
  return math.floor(d / 1000 + 0.5)
end

request = function()
  seq = seq + 1
  if kind == "change" then
    return wrk.format("POST", "/api/users/me/online-status/",
                      hdr(tokens[math.random(1, #tokens)], true), '{"status": "away"}')
  elseif kind == "read" then
    if seq % 2 == 0 then
      return wrk.format("GET", "/api/users/admin/users/online/?page=1&per_page=50", hdr(staff))
    end
    return wrk.format("GET", "/api/users/admin/users/" .. math.random(1, users) ..
                      "/online-status/", hdr(staff))
  end
  return wrk.format("POST", "/api/users/me/heartbeat/", hdr(tokens[(seq - 1) % #tokens + 1]))
end

local threads = {}
setup = function(thread) threads[#threads + 1] = thread end

done = function(summary, latency, requests)
  local lmax = 0
  local lh = {}
  for b = 0, 20 do lh[b] = 0 end
  for _, t in ipairs(threads) do
    lmax = math.max(lmax, t:get("late_max_us"))
    local l = t:get("late")
    for b = 0, 20 do lh[b] = lh[b] + (l[b] or 0) end
  end
  -- p99 lateness: the upper edge of the bucket holding the 99th percentile
  local n = 0
  for b = 0, 20 do n = n + lh[b] end
  local want, acc, late99 = n * 0.99, 0, 0
  for b = 0, 20 do
    acc = acc + lh[b]
    if acc >= want then late99 = 2 ^ b; break end
  end
  if n == 0 then late99 = 0 end
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests": %d, "duration_us": %d, "errors": %d, "p50_us": %d, "p99_us": %d, ' ..
    '"offered_per_s": %.1f, ' ..
    '"late_p99_ms": %d, "late_max_ms": %.1f}\n',
    summary.requests, summary.duration,
    e.connect + e.read + e.write + e.timeout + e.status,
    latency:percentile(50), latency:percentile(99), rate,
    late99 > 1 and late99 or 0, lmax / 1000))
end
