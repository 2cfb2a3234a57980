-- Refresh-token rotation: every response's new refresh_token feeds a later request.
-- Each thread takes its share of the seeded tokens (one per line of BENCH_SEED_FILE)
-- and keeps a pool; a token is never sent twice unless the pool ran dry, in which
-- case the server rejects the reuse and wrk counts a non-2xx response.
-- With BENCH_POOL_OUT set, the tokens still unused at the end are written there, one a
-- line, so that the next run (a stability segment) goes on with them.
-- Env: BENCH_PATH, BENCH_AUTH, BENCH_SEED_FILE, BENCH_THREADS, BENCH_LUA_DIR, and
-- BENCH_TOKEN_LOG, BENCH_POOL_OUT (optional).
dofile(os.getenv("BENCH_LUA_DIR") .. "/report.lua")

first_error = ""
pool = {}  -- global: done() copies it out of each thread

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
  if bench_logging then log_token(status, body) end
end

function bench_done()
  local out = os.getenv("BENCH_POOL_OUT") or ""
  if out == "" then return end
  local file = assert(io.open(out, "w"))
  for _, thread in ipairs(bench_threads) do
    for _, token in ipairs(thread:get("pool") or {}) do file:write(token, "\n") end
  end
  file:close()
end
