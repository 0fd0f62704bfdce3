-- wrk script: the anchor's post_json.lua, plus a pause of $PACE_MS before each request on each connection,
-- so that c connections offer about c * 1000 / (PACE_MS + latency) requests a second whatever the server
-- does with them: the same load for every config (latency is measured without the pause).
local f = assert(io.open(assert(os.getenv("BODY_FILE"), "set BODY_FILE"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
local pace = tonumber(os.getenv("PACE_MS") or "0")
-- PACE_DIST=exp: each pause is drawn from an exponential distribution with mean PACE_MS, so the connections do not
-- move in step (with a fixed pause, the requests answered by one batch come back together 25 ms later and form the
-- next batch: waves that favour one version per batch and that independent clients do not make).
local exp = os.getenv("PACE_DIST") == "exp"

function init(args)
  math.randomseed(os.time())
end

function delay()
  if exp then
    return math.floor(-pace * math.log(1 - math.random()) + 0.5)
  end
  return pace
end

function done(summary, latency, requests)
  local e = summary.errors
  local secs = summary.duration / 1e6
  io.write(string.format(
    "WRK_SUMMARY requests=%d duration_s=%.3f rps=%.2f p50_ms=%.3f p90_ms=%.3f p95_ms=%.3f p99_ms=%.3f max_ms=%.3f mean_ms=%.3f " ..
    "err_connect=%d err_read=%d err_write=%d err_timeout=%d non2xx=%d bytes=%d\n",
    summary.requests, secs, summary.requests / secs,
    latency:percentile(50) / 1e3, latency:percentile(90) / 1e3, latency:percentile(95) / 1e3,
    latency:percentile(99) / 1e3,
    latency.max / 1e3, latency.mean / 1e3,
    e.connect, e.read, e.write, e.timeout, e.status, summary.bytes))
end
