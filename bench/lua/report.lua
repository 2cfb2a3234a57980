-- Shared by the bench scripts: thread ids, the token log, and one machine-readable
-- summary line at the end.
--
-- Token log (the "nothing lost" check): when BENCH_TOKEN_LOG names a folder, every
-- access_token of a 200 answer is appended to <folder>/tokens-<thread id>.txt. The file
-- is opened once per thread and written through stdio's buffer; wrk has no per-thread
-- teardown, so the buffer is flushed every FLUSH_EVERY lines and, for the rest, by the
-- C library when wrk exits. The harness compares the lines with wrk's own count.
local next_id = 0
bench_threads = {}  -- done() reads each thread's first failed answer and refresh pool
function setup(thread)
  thread:set("tid", next_id)
  next_id = next_id + 1
  table.insert(bench_threads, thread)
end

local token_dir = os.getenv("BENCH_TOKEN_LOG") or ""
bench_logging = token_dir ~= ""
local FLUSH_EVERY = 1000
local log_file = nil
local logged = 0

function log_token(status, body)
  if status ~= 200 then return end
  local token = body:match('"access_token"%s*:%s*"([^"]+)"')
  if not token then return end
  if not log_file then
    log_file = assert(io.open(token_dir .. "/tokens-" .. tid .. ".txt", "a"))
  end
  log_file:write(token, "\n")
  logged = logged + 1
  if logged % FLUSH_EVERY == 0 then log_file:flush() end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,' ..
    '"write":%d,"status":%d,"timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,' ..
    '"p999_us":%d,"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write,
    e.status, e.timeout, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9), latency.max, latency.mean))
  for _, thread in ipairs(bench_threads) do
    local err = thread:get("first_error")
    if err and err ~= "" then io.write("BENCH_ERR " .. err .. "\n") end
  end
  if bench_done then bench_done() end
end
