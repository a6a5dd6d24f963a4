-- wrk script for bench/lib/wrk.ts: pushes taken round-robin from the Lua table in $WRK_DATA
-- ({ {method=, path=, headers={}, head=, rest=} ... }); a push with `rest` gets a fresh batch id
-- between head and rest ($WRK_NONCE-<n>). With $WRK_RATE > 0 the pushes of all connections are
-- paced to that many per second (a connection waits for its slot; one behind its slot goes at
-- once); without, each connection sends its next push as soon as the last one is answered.
-- done() prints one line, WRK_RESULT {json}, that wrk.ts reads.
local pushes = dofile(os.getenv("WRK_DATA"))
local nonce = os.getenv("WRK_NONCE") or "wrk"
local rate = tonumber(os.getenv("WRK_RATE") or "0") or 0
local n = #pushes
local i = 0

request = function()
  local p = pushes[(i % n) + 1]
  i = i + 1
  local body = p.head
  if p.rest then body = p.head .. string.format("%s-%08d", nonce, i) .. p.rest end
  return wrk.format(p.method, p.path, p.headers, body)
end

if rate > 0 then
  local ffi = require("ffi")
  ffi.cdef [[
    typedef struct { long tv_sec; long tv_nsec; } wrk_timespec;
    int clock_gettime(int clk, wrk_timespec *tp);
  ]]
  local ts = ffi.new("wrk_timespec")
  local function now_ms()
    ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
    return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
  end
  local interval = 1000 / rate
  local next_at = nil
  delay = function()
    local t = now_ms()
    -- A schedule more than a second behind starts again from now instead of bursting.
    if next_at == nil or next_at < t - 1000 then next_at = t end
    local d = next_at - t
    next_at = next_at + interval
    if d <= 0 then return 0 end
    return math.floor(d + 0.5)
  end
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_RESULT {"requests":%d,"durationUs":%d,"statusErrors":%d,"socketErrors":%d,"p50Us":%d,"p99Us":%d,"p999Us":%d,"maxUs":%d}\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9), latency.max))
end
