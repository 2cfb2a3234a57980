-- Refresh-token rotation: every response's new refresh_token feeds a later request.
-- Each thread takes its share of the seeded tokens (one per line of BENCH_SEED_FILE)
-- and keeps a pool; a token is never sent twice unless the pool ran dry, in which
-- case the server rejects the reuse and wrk counts a non-2xx response.
-- Env: BENCH_PATH, BENCH_AUTH, BENCH_SEED_FILE, BENCH_THREADS, BENCH_LUA_DIR.
dofile(os.getenv("BENCH_LUA_DIR") .. "/report.lua")

local next_id = 0
bench_threads = {}  -- report.lua prints each thread's first failed answer
function setup(thread)
  thread:set("tid", next_id)
  next_id = next_id + 1
  table.insert(bench_threads, thread)
end

first_error = ""

local pool = {}
local last = ""
local headers = {
  ["Content-Type"] = "application/x-www-form-urlencoded",
  ["Authorization"] = os.getenv("BENCH_AUTH"),
}

function init(args)
  local threads = tonumber(os.getenv("BENCH_THREADS"))
  local i = 0
  for line in io.lines(os.getenv("BENCH_SEED_FILE")) do
    if line ~= "" and i % threads == tid then table.insert(pool, line) end
    i = i + 1
  end
end

local function urlencode(s)
  return (s:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", string.byte(c)) end))
end

function request()
  local token = table.remove(pool) or last
  last = token
  local body = "grant_type=refresh_token&refresh_token=" .. urlencode(token)
  return wrk.format("POST", os.getenv("BENCH_PATH"), headers, body)
end

function response(status, hdrs, body)
  if status >= 300 and first_error == "" then
    first_error = status .. " " .. body:sub(1, 200):gsub("%s+", " ")
  end
  local token = body:match('"refresh_token"%s*:%s*"([^"]+)"')
  if token then table.insert(pool, token) end
end
