-- wrk script for usersd's benchmark scenarios. Configured by environment:
--   BENCH_MODE    static | pages | status | set | heartbeat | mixed
--                 (pages: BENCH_PATH's {page} becomes a random page 1..20)
--   BENCH_USERS   highest user id to pick from (status, set, mixed)
--   BENCH_TOKENS  a file with one token per line (the first is staff)
--   BENCH_PATH    the path for static mode
-- done() prints one JSON line that bench/run.sh collects.
local mode = os.getenv("BENCH_MODE") or "static"
local users = tonumber(os.getenv("BENCH_USERS") or "1000")
local path = os.getenv("BENCH_PATH") or "/"
local tokens = {}
local tf = os.getenv("BENCH_TOKENS")
if tf then
  for line in io.lines(tf) do tokens[#tokens + 1] = line end
end
local statuses = { "online", "away", "offline" }

local function auth(i)
  return { ["Authorization"] = "Token " .. tokens[i], ["Content-Type"] = "application/json" }
end

local function get_status()
  local id = math.random(1, users)
  return wrk.format("GET", "/api/users/admin/users/" .. id .. "/online-status/", auth(1))
end

local function set_status()
  local id = math.random(1, users)
  local body = '{"status": "' .. statuses[math.random(1, 3)] .. '"}'
  return wrk.format("POST", "/api/users/admin/users/" .. id .. "/set-online-status/", auth(1), body)
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
  elseif mode == "heartbeat" then
    return wrk.format("POST", "/api/users/me/heartbeat/", auth(math.random(1, #tokens)))
  elseif mode == "mixed" then
    if math.random(1, 10) == 1 then return set_status() end
    return get_status()
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
