-- POST one fixed form body with an Authorization header over keep-alive connections.
-- Env: BENCH_PATH, BENCH_BODY, BENCH_AUTH (header value), BENCH_LUA_DIR, and
-- BENCH_TOKEN_LOG (optional, see report.lua).
dofile(os.getenv("BENCH_LUA_DIR") .. "/report.lua")

wrk.method = "POST"
wrk.path = os.getenv("BENCH_PATH")
wrk.body = os.getenv("BENCH_BODY")
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = os.getenv("BENCH_AUTH")

-- Only when logging: without a response() wrk does not hand answers to Lua at all.
if bench_logging then
  function response(status, headers, body)
    log_token(status, body)
  end
end
