-- wrk script for bench/ingest.py: POSTs signed GitHub `star` deliveries to /webhooks/github.
--
-- GitHub signs every delivery (HMAC-SHA256 of the body) and gives it its own X-GitHub-Delivery
-- id, so a real sender's requests all differ. The benchmark signs a pool of them beforehand
-- (one per line: delivery, signature, body, separated by tabs) and this script sends them in
-- turn; wrk does no cryptography while it measures, just as it does nothing for the bare
-- handler, which gets the same requests.
--
-- Arguments (after `--`): the pool file, and `once` to stop after sending each request once
-- (the end-to-end run, which counts flattrs) or `loop` to start again from the first (the
-- intake runs: the hub stores every request it accepts, repeated or not; the worker would
-- count a repeated delivery once). The file's first line is a signed `ping`, sent when a
-- `once` pool is used up while the thread stops; it stores nothing.

local requests = {}
local count, position = 0, 0
local once = false
local ping = nil

local function format(line)
  local event, delivery, signature, body = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$")
  return wrk.format("POST", "/webhooks/github", {
    ["Content-Type"] = "application/json",
    ["X-GitHub-Event"] = event,
    ["X-GitHub-Delivery"] = delivery,
    ["X-Hub-Signature-256"] = "sha256=" .. signature,
  }, body)
end

function init(args)
  for line in io.lines(args[1]) do
    if ping == nil then
      ping = format(line)
    else
      count = count + 1
      requests[count] = format(line)
    end
  end
  once = args[2] == "once"
end

function request()
  position = position + 1
  if position > count then
    if once then
      wrk.thread:stop()
      return ping
    end
    position = 1
  end
  return requests[position]
end
