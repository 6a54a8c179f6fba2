-- wrk script for usersd's benchmark scenarios. Configured by environment:
--   BENCH_MODE    static | pages | status | set | set_online_away | heartbeat
--                 | heartbeat_seq | mixed | login
--                 (pages: BENCH_PATH's {page} becomes a random page 1..20;
--                 set_online_away: set, online or away at random;
--                 heartbeat: a random token of BENCH_TOKENS; heartbeat_seq:
--                 the tokens in turn, so with N tokens each user's
--                 heartbeats are N requests apart; login: user seed<k>, k
--                 random below BENCH_USERS, password BENCH_PASSWORD)
--   BENCH_USERS   highest user id to pick from (status, set, mixed, login)
--   BENCH_TOKENS  a file with one token per line (the first is staff)
--   BENCH_PATH    the path for static and pages modes
--   BENCH_DELAY_MS  a pause before each request of a connection (0: none)
--   BENCH_TOKEN_START  heartbeat_seq's first token (0-based; default random),
--                 so passes over the tokens can continue one another
-- done() prints one JSON line that bench/run.sh collects.
local mode = os.getenv("BENCH_MODE") or "static"
local users = tonumber(os.getenv("BENCH_USERS") or "1000")
local path = os.getenv("BENCH_PATH") or "/"
local password = os.getenv("BENCH_PASSWORD") or "seed-password"
local delay_ms = tonumber(os.getenv("BENCH_DELAY_MS") or "0")
local tokens = {}
local tf = os.getenv("BENCH_TOKENS")
-- an empty value means none (io.lines("") would fail the script, and wrk
-- would then send "GET /" instead: nginx's 403 page was measured that way)
if tf and tf ~= "" then
  for line in io.lines(tf) do tokens[#tokens + 1] = line end
end
local statuses = { "online", "away", "offline" }
local next_token = 0

local function auth(i)
  return { ["Authorization"] = "Token " .. tokens[i], ["Content-Type"] = "application/json" }
end

local function get_status()
  local id = math.random(1, users)
  return wrk.format("GET", "/api/users/admin/users/" .. id .. "/online-status/", auth(1))
end

local function set_status(choices)
  local id = math.random(1, users)
  local body = '{"status": "' .. statuses[math.random(1, choices or 3)] .. '"}'
  return wrk.format("POST", "/api/users/admin/users/" .. id .. "/set-online-status/", auth(1), body)
end

-- Seeded from /dev/urandom, not the clock: wrk processes started in the
-- same second (pg_processes runs one per usersd) would pick the same users
-- in the same order, and their writes would wait on each other's rows.
local function seed()
  local f = io.open("/dev/urandom", "rb")
  local b = f and f:read(4)
  if f then f:close() end
  if not b then return os.time() end
  return ((b:byte(1) * 256 + b:byte(2)) * 256 + b:byte(3)) * 128 + b:byte(4) % 128
end

init = function(args)
  math.randomseed(seed())
  next_token = tonumber(os.getenv("BENCH_TOKEN_START") or "") or
               math.random(0, math.max(#tokens - 1, 0))
end

if delay_ms > 0 then
  delay = function() return delay_ms end
end

request = function()
  if mode == "static" then
    if #tokens > 0 then return wrk.format("GET", path, auth(1)) end
    return wrk.format("GET", path)
  elseif mode == "pages" then
    return wrk.format("GET", path:gsub("{page}", tostring(math.random(1, 20))), auth(1))
  elseif mode == "status" then
    return get_status()
  elseif mode == "set" then
    return set_status()
  elseif mode == "set_online_away" then
    return set_status(2)
  elseif mode == "heartbeat" then
    return wrk.format("POST", "/api/users/me/heartbeat/", auth(math.random(1, #tokens)))
  elseif mode == "heartbeat_seq" then
    next_token = next_token % #tokens + 1
    return wrk.format("POST", "/api/users/me/heartbeat/", auth(next_token))
  elseif mode == "mixed" then
    if math.random(1, 10) == 1 then return set_status() end
    return get_status()
  elseif mode == "login" then
    local body = '{"username": "seed' .. math.random(1, users - 1) ..
                 '", "password": "' .. password .. '"}'
    return wrk.format("POST", "/api/auth/login/", { ["Content-Type"] = "application/json" }, body)
  end
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests": %d, "duration_us": %d, "errors": %d, "p50_us": %d, "p99_us": %d}\n',
    summary.requests, summary.duration,
    e.connect + e.read + e.write + e.timeout + e.status,
    latency:percentile(50), latency:percentile(99)))
end
