-- wrk script: rotate through a file of requests, one per line: METHOD<TAB>PATH<TAB>BODY.
-- The Authorization header comes from wrk's -H flags (wrk.headers).
-- At the end, print one JSON line with latency percentiles (microseconds) and counts.
local reqs = {}
local n = 0
local threads = {}
local counter = 1

function setup(thread)
  thread:set("offset", counter)
  counter = counter + 7
  table.insert(threads, thread)
end

function init(args)
  local f = assert(io.open(args[1], "r"))
  for line in f:lines() do
    local method, path, body = line:match("^([^\t]*)\t([^\t]*)\t?(.*)$")
    if method then
      local headers = {}
      for k, v in pairs(wrk.headers) do headers[k] = v end
      if body == "" then
        body = nil
      else
        headers["Content-Type"] = "application/json"
      end
      n = n + 1
      reqs[n] = wrk.format(method, path, headers, body)
    end
  end
  f:close()
  idx = (offset or 1) % n
end

function request()
  idx = idx % n + 1
  return reqs[idx]
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,"p50_us":%d,"p95_us":%d,"p99_us":%d,' ..
    '"max_us":%d,"mean_us":%f,"err_connect":%d,"err_read":%d,"err_write":%d,' ..
    '"err_status":%d,"err_timeout":%d}\n',
    summary.requests, summary.duration, summary.bytes, latency:percentile(50),
    latency:percentile(95), latency:percentile(99), latency.max, latency.mean,
    e.connect, e.read, e.write, e.status, e.timeout))
end
