-- wrk script for bench/inbound.py: replays pre-signed inbound SMS webhooks, one unique MessageSid each.
-- HEARTH_BENCH_REQUESTS names a file of "<X-Twilio-Signature>\t<urlencoded form>" lines; thread i of
-- HEARTH_BENCH_THREADS takes every line whose index mod threads == i. A thread that runs out of lines
-- starts again (a repeated MessageSid takes Hearth's cheaper dedupe path), and reports how often it did,
-- so the caller can refuse such a run.

local threads = {}
local counter = 0

function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  local path = os.getenv("HEARTH_BENCH_REQUESTS")
  local nthreads = tonumber(os.getenv("HEARTH_BENCH_THREADS"))
  reqs = {}
  wrapped = 0
  local i = 0
  for line in io.lines(path) do
    if i % nthreads == tid then
      local sig, body = line:match("^([^\t]+)\t(.*)$")
      reqs[#reqs + 1] = wrk.format("POST", "/twilio/sms", {
        ["Content-Type"] = "application/x-www-form-urlencoded",
        ["X-Twilio-Signature"] = sig,
      }, body)
    end
    i = i + 1
  end
  idx = 0
end

function request()
  idx = idx + 1
  if idx > #reqs then
    idx = 1
    wrapped = wrapped + 1
  end
  return reqs[idx]
end

function done(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do
    total = total + (thread:get("wrapped") or 0)
  end
  io.write(string.format("HEARTH_WRAPPED %d\n", total))
end
