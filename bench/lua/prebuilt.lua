-- Requests made before the run (benchlib/servers/tokensmith_fapi.py): each line of
-- <BENCH_SEED_FILE>.<thread id> is "<DPoP proof>\t<client assertion>", each sent once,
-- the assertion appended to BENCH_BODY. A thread out of lines sends its last one again,
-- which the server refuses as a replay: a short supply shows as non-2xx answers.
-- Env: BENCH_PATH, BENCH_BODY, BENCH_SEED_FILE, BENCH_LUA_DIR, BENCH_TOKEN_LOG (optional).
dofile(os.getenv("BENCH_LUA_DIR") .. "/report.lua")

first_error = ""
local path = os.getenv("BENCH_PATH")
local body = os.getenv("BENCH_BODY")
local file = nil
local proof, assertion = "", ""

function init(args)
  file = assert(io.open(os.getenv("BENCH_SEED_FILE") .. "." .. tid, "r"))
end

function request()
  local line = file:read("*l")
  if line then
    local tab = line:find("\t", 1, true)
    proof, assertion = line:sub(1, tab - 1), line:sub(tab + 1)
  end
  local headers = {["Content-Type"] = "application/x-www-form-urlencoded", ["DPoP"] = proof}
  return wrk.format("POST", path, headers, body .. assertion)
end

function response(status, hdrs, answer)
  if status >= 300 and first_error == "" then
    first_error = status .. " " .. answer:sub(1, 200):gsub("%s+", " ")
  end
  if bench_logging then log_token(status, answer) end
end
