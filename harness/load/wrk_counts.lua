-- Counts responses per instance (the X-Instance header) and per status in every wrk
-- thread, then prints the sums once wrk is done, for the harness to read.
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  instances = {}
  statuses = {}
end

function response(status, headers, body)
  local instance = headers["X-Instance"] or "-"
  instances[instance] = (instances[instance] or 0) + 1
  local key = tostring(status)
  statuses[key] = (statuses[key] or 0) + 1
end

local function add(into, from)
  for key, count in pairs(from) do
    into[key] = (into[key] or 0) + count
  end
end

function done(summary, latency, requests)
  local all_instances, all_statuses = {}, {}
  for _, thread in ipairs(threads) do
    add(all_instances, thread:get("instances"))
    add(all_statuses, thread:get("statuses"))
  end
  for key, count in pairs(all_instances) do
    io.write(string.format("harness-instance\t%s\t%d\n", key, count))
  end
  for key, count in pairs(all_statuses) do
    io.write(string.format("harness-status\t%s\t%d\n", key, count))
  end
  local errors = summary.errors
  io.write(string.format("harness-summary\t%d\t%d\t%d\n", summary.requests, summary.duration,
    errors.connect + errors.read + errors.write + errors.timeout))
  for _, p in ipairs({50, 90, 99}) do
    io.write(string.format("harness-latency\t%d\t%d\n", p, latency:percentile(p)))
  end
end
