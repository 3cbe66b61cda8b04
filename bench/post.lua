-- wrk script: send pre-signed raw HTTP requests in turn and print the results as one JSON line.
--
-- Usage: wrk -t THREADS ... -s bench/post.lua URL -- REQUESTS_FILE THREADS
-- REQUESTS_FILE contains complete HTTP/1.1 requests, each followed by a NUL byte
-- (bench/signed_requests.py writes it). With several threads, thread k of n sends
-- requests k, k + n, k + 2n, ..., so no two threads send the same request.
-- After the last request a thread starts again from its first one.

local next_id = 0

function setup(thread)
  next_id = next_id + 1
  thread:set("thread_id", next_id)
end

local requests = {}
local position = 0

function init(args)
  local threads = tonumber(args[2] or "1")
  local file = assert(io.open(args[1], "rb"))
  local data = file:read("*a")
  file:close()

  local start = 1
  local index = 0
  while true do
    local stop = string.find(data, "\0", start, true)
    if not stop then
      break
    end
    if index % threads == (thread_id or 1) - 1 then
      requests[#requests + 1] = string.sub(data, start, stop - 1)
    end
    index = index + 1
    start = stop + 1
  end
  if #requests == 0 then
    error("no requests for this thread in " .. args[1])
  end
end

function request()
  position = position % #requests + 1
  return requests[position]
end

-- errors.status counts responses with a status of 400 or more; wrk counts 3xx as success.
function done(summary, latency, _)
  local errors = summary.errors
  io.write(string.format(
    "BENCH_RESULT {\"duration_us\": %d, \"requests\": %d, \"bytes\": %d, " ..
    "\"connect_errors\": %d, \"read_errors\": %d, \"write_errors\": %d, " ..
    "\"status_errors\": %d, \"timeouts\": %d, \"latency_mean_us\": %.1f, " ..
    "\"latency_p50_us\": %d, \"latency_p90_us\": %d, \"latency_p99_us\": %d, " ..
    "\"latency_max_us\": %d}\n",
    summary.duration, summary.requests, summary.bytes,
    errors.connect, errors.read, errors.write, errors.status, errors.timeout,
    latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max))
end
