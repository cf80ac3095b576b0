-- wrk script of the insights-mock bench (bench/run.py, bench/scaling.py).
--
-- BENCH_METHOD  GET (default) or POST; POST sends an empty body with Content-Length: 0.
-- BENCH_COUNT=1 count on the client what a count check needs: requests written, 2xx and other answers,
--               and, from each 2xx body, the "viewCount" it carries (distinct values prove that no two
--               answered views saw the same total, i.e. no lost update). Off for plain reads, since a
--               response() callback makes wrk buffer every body into Lua and costs client CPU.
-- done() prints one line "BENCH_JSON {...}" with wrk's own summary, exact percentiles in microseconds
-- and the counts; bench/harness.py reads it (and falls back on wrk's text when it is missing).

local method = os.getenv("BENCH_METHOD") or "GET"
local counting = os.getenv("BENCH_COUNT") == "1"

wrk.method = method
if method == "POST" then
   wrk.body = ""  -- wrk.format() then sends Content-Length: 0
end

local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

if counting then
   sent, ok, other = 0, 0, 0
   counts = {}
   local req

   function init(args)
      req = wrk.format()
   end

   function request()
      sent = sent + 1
      return req
   end

   function response(status, headers, body)
      if status >= 200 and status < 300 then
         ok = ok + 1
         local n = body and string.match(body, '"viewCount"%s*:%s*(%d+)')
         if n then
            counts[#counts + 1] = tonumber(n)
         end
      else
         other = other + 1
      end
   end
end

local function field(name, value)
   return string.format('"%s":%s', name, tostring(value))
end

function done(summary, latency, requests)
   local e = summary.errors
   local parts = {
      field("duration_us", summary.duration),
      field("requests", summary.requests),
      field("bytes", summary.bytes),
      field("err_connect", e.connect),
      field("err_read", e.read),
      field("err_write", e.write),
      field("err_status", e.status),
      field("err_timeout", e.timeout),
      field("lat_min_us", latency.min),
      field("lat_max_us", latency.max),
      field("lat_mean_us", string.format("%.1f", latency.mean)),
      field("lat_stdev_us", string.format("%.1f", latency.stdev)),
      field("p50_us", latency:percentile(50)),
      field("p75_us", latency:percentile(75)),
      field("p90_us", latency:percentile(90)),
      field("p99_us", latency:percentile(99)),
      field("p999_us", latency:percentile(99.9)),
   }
   if counting then
      local sent_total, ok_total, other_total = 0, 0, 0
      local seen, with_count, dup_values, lo, hi = {}, 0, 0, nil, nil
      for _, t in ipairs(threads) do
         sent_total = sent_total + (t:get("sent") or 0)
         ok_total = ok_total + (t:get("ok") or 0)
         other_total = other_total + (t:get("other") or 0)
         for _, n in ipairs(t:get("counts") or {}) do
            with_count = with_count + 1
            if seen[n] then
               dup_values = dup_values + 1
            else
               seen[n] = true
            end
            if lo == nil or n < lo then lo = n end
            if hi == nil or n > hi then hi = n end
         end
      end
      parts[#parts + 1] = field("sent", sent_total)
      parts[#parts + 1] = field("answered_2xx", ok_total)
      parts[#parts + 1] = field("answered_other", other_total)
      parts[#parts + 1] = field("with_view_count", with_count)
      parts[#parts + 1] = field("duplicate_view_counts", dup_values)
      parts[#parts + 1] = field("min_view_count", lo or "null")
      parts[#parts + 1] = field("max_view_count", hi or "null")
   end
   io.write("BENCH_JSON {" .. table.concat(parts, ",") .. "}\n")
end
