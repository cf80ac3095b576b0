"""Smoke test of the bench harness itself: asserts no figure of speed (a minute or so).

    .venv/bin/pytest bench/test_bench_smoke.py

The parsers (wrk's output, hey's CSV) and the count checks are tested on captured output and made-up
counts; the ceiling and the bare Flask app are called in process; when wrk is installed, the ceiling is
served by gunicorn exactly as bench/run.py serves it and wrk runs against it for one second. Then, live,
`bench/run.py --quick` on a few operations (mock and flask-floor, plus mock-postgres when it can run) and
`bench/fixed_rate.py --quick` (mock, flask-floor, and mock-postgres and prism-static when they can run:
their tests are skipped, saying why, when PostgreSQL, the mock's --database-url or npx is missing). The
live tests assert that requests were answered, so that no run passes because nothing ran.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import charts  # noqa: E402
import fixed_rate  # noqa: E402
import harness as h  # noqa: E402
import postgres  # noqa: E402
import run  # noqa: E402
import scaling  # noqa: E402
import serve_ceiling  # noqa: E402
import startup_large  # noqa: E402
from ceiling import create_app, create_flask_app  # noqa: E402

# wrk 4.1.0 against Prism 5.16 (static), 32 connections
WRK_PLAIN = """\
Running 3s test @ http://127.0.0.1:4999/api/v2/insights/kpis/audit-logs/dashboard/most-viewed
  2 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    37.92ms   70.73ms 669.96ms   94.58%
    Req/Sec   692.64    229.39     1.13k    72.41%
  Latency Distribution
     50%   22.48ms
     75%   26.42ms
     90%   38.91ms
     99%  437.58ms
  4017 requests in 3.01s, 2.49MB read
Requests/sec:   1332.69
Transfer/sec:    845.94KB
"""

# wrk against python -m http.server on a missing path: every answer a 404
WRK_NON2XX = """\
Running 1s test @ http://127.0.0.1:4712/nope
  1 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     3.53ms    2.88ms  17.22ms   86.52%
    Req/Sec     1.26k   320.20     1.73k    70.00%
  Latency Distribution
     50%    2.65ms
     75%    4.83ms
     90%    7.05ms
     99%   14.01ms
  1251 requests in 1.00s, 635.45KB read
  Non-2xx or 3xx responses: 1251
Requests/sec:   1250.11
Transfer/sec:    635.00KB
"""

# wrk --timeout 1s against a server that takes 1.5 s
WRK_TIMEOUTS = """\
Running 2s test @ http://127.0.0.1:4713/slow
  1 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     0.00us    0.00us   0.00us    -nan%
    Req/Sec     2.00      0.00     2.00    100.00%
  Latency Distribution
     50%    0.00us
     75%    0.00us
     90%    0.00us
     99%    0.00us
  4 requests in 2.01s, 492.00B read
  Socket errors: connect 0, read 0, write 0, timeout 4
Requests/sec:      1.99
Transfer/sec:     245.11B
"""

# wrk -s bench/lua/bench.lua with BENCH_METHOD=POST BENCH_COUNT=1 against the ceiling
WRK_LUA_COUNTING = """\
Running 1s test @ http://127.0.0.1:4714/v
  2 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.09ms  462.76us   4.93ms   73.58%
    Req/Sec     1.85k   488.61     3.87k    95.24%
  Latency Distribution
     50%    1.04ms
     75%    1.32ms
     90%    1.64ms
     99%    2.59ms
  3860 requests in 1.10s, 716.21KB read
Requests/sec:   3509.15
Transfer/sec:    651.11KB
BENCH_JSON {"duration_us":1099983,"requests":3860,"bytes":733400,"err_connect":0,"err_read":0,"err_write":0,\
"err_status":0,"err_timeout":0,"lat_min_us":198,"lat_max_us":4925,"lat_mean_us":1091.0,"lat_stdev_us":462.8,\
"p50_us":1043,"p75_us":1319,"p90_us":1639,"p99_us":2591,"p999_us":4704,"sent":3863,"answered_2xx":3860,\
"answered_other":0,"with_view_count":3860,"duplicate_view_counts":3859,"min_view_count":10,"max_view_count":10}
"""


# --- the parser ----------------------------------------------------------------------------------

def test_parses_wrk_text():
    r = h.parse_wrk_output(WRK_PLAIN)
    assert r["source"] == "text"
    assert r["requests"] == 4017
    assert r["duration_s"] == 3.01
    assert r["rps"] == 1332.69
    assert (r["p50_ms"], r["p75_ms"], r["p90_ms"], r["p99_ms"]) == (22.48, 26.42, 38.91, 437.58)
    assert r["mean_ms"] == 37.92 and r["max_ms"] == 669.96
    assert r["non2xx"] == 0 and r["errors"] == 0


def test_counts_non_2xx_answers_as_errors():
    r = h.parse_wrk_output(WRK_NON2XX)
    assert r["non2xx"] == 1251
    assert r["errors"] == 1251
    assert r["p99_ms"] == 14.01


def test_counts_socket_errors_and_reads_microseconds():
    r = h.parse_wrk_output(WRK_TIMEOUTS)
    assert r["socket_errors"] == {"connect": 0, "read": 0, "write": 0, "timeout": 4}
    assert r["errors"] == 4
    assert r["p50_ms"] == 0.0
    assert r["duration_s"] == 2.01


def test_prefers_the_lua_summary_and_keeps_the_counts():
    r = h.parse_wrk_output(WRK_LUA_COUNTING)
    assert r["source"] == "lua"
    assert r["requests"] == 3860
    assert r["rps"] == round(3860 / 1.099983, 1)
    assert r["p50_ms"] == 1.043 and r["p99_ms"] == 2.591 and r["p999_ms"] == 4.704
    assert r["sent"] == 3863 and r["answered_2xx"] == 3860 and r["answered_other"] == 0
    assert r["duplicate_view_counts"] == 3859
    assert r["errors"] == 0


def test_unit_conversion():
    assert h._to_ms("250", "us") == 0.25
    assert h._to_ms("1.5", "s") == 1500.0
    assert h._to_ms("2", "m") == 120000.0


def test_rejects_what_is_not_wrk_output():
    with pytest.raises(ValueError):
        h.parse_wrk_output("unable to connect to 127.0.0.1:1 Connection refused\n")


# --- the count check of the view POST ------------------------------------------------------------

def _run(sent, ok, other=0, dups=0, lo=None, hi=None):
    return {"sent": sent, "answered_2xx": ok, "answered_other": other, "duplicate_view_counts": dups,
            "min_view_count": lo, "max_view_count": hi}


def test_count_check_accepts_exact_counts_with_requests_left_in_flight():
    check = run.view_count_check(100, 200, [_run(103, 98, lo=101, hi=198), _run(2, 2, lo=199, hi=200)])
    assert check["ok"]
    assert (check["lost"], check["duplicated"], check["unanswered_in_flight"], check["in_flight_counted"]) == \
        (0, 0, 5, 0)


def test_count_check_finds_lost_counts():
    check = run.view_count_check(100, 195, [_run(100, 100, lo=101, hi=195)])
    assert not check["ok"] and check["lost"] == 5


def test_count_check_finds_duplicated_counts():
    check = run.view_count_check(100, 210, [_run(100, 100, lo=101, hi=200)])
    assert not check["ok"] and check["duplicated"] == 10


def test_count_check_finds_two_answers_with_the_same_total():
    # the delta alone looks right when one lost update hides behind a counted in-flight request
    check = run.view_count_check(100, 200, [_run(101, 100, dups=1, lo=101, hi=200)])
    assert not check["ok"] and check["duplicate_view_counts_in_bodies"] == 1


def test_count_check_refuses_totals_outside_before_after():
    check = run.view_count_check(100, 200, [_run(100, 100, lo=50, hi=149)])
    assert not check["ok"] and not check["view_counts_within_before_after"]


def test_count_check_refuses_error_answers():
    check = run.view_count_check(100, 190, [_run(100, 90, other=10, lo=101, hi=190)])
    assert not check["ok"]


# --- small pieces --------------------------------------------------------------------------------

def test_combined_rounds_take_medians_and_sum_errors():
    rounds = [{"path": "/x", "probe_status": 200, "body_bytes": 10, "rps": r, "p50_ms": r / 100,
               "p99_ms": r / 10, "requests": 10, "errors": 1, "non2xx": 1} for r in (100.0, 300.0, 200.0)]
    combined = run.combine_rounds(rounds)
    assert combined["rps"] == 200.0 and combined["p99_ms"] == 20.0
    assert combined["errors"] == 3 and combined["requests"] == 30 and len(combined["rounds"]) == 3


def test_scaling_sizes():
    assert [scaling.parse_size(s) for s in ("1k", "10K", "100k", "1M", "2500")] == [1000, 10000, 100000,
                                                                                   1000000, 2500]
    assert [scaling.size_label(n) for n in (1000, 1000000, 2500)] == ["1k", "1M", "2500"]


def test_startup_large_times_both_modes_to_the_listening_line(tmp_path):
    """A small live run of bench/startup_large.py: each mode reached `listening on`, answered its health check
    with the data's counts (so no run is timed without its data), and reported CPU and a peak memory; the --db
    restart served the data the first start loaded."""
    assert startup_large.main(["--views", "2000", "--audit-logs", "1000", "--out", str(tmp_path)]) == 0
    (result,) = tmp_path.glob("startup_large-*.json")
    runs = json.loads(result.read_text())["runs"]
    assert [r["mode"] for r in runs] == ["memory", "db", "db, loaded file"]
    for r in runs:
        assert r["health"] == 200 and r["counts"]["views"] >= 2000 and r["counts"]["audit_logs"] >= 1000
        assert 0 < r["cpu_s"] <= r["ready_s"] * h.cores() and r["peak_mb"] > 20
    assert runs[1]["db_file_mb"] > 0
    # the restart served the file the first start filled: the same data, in the same file
    assert runs[2]["counts"] == runs[1]["counts"] and runs[2]["argv"] == runs[1]["argv"]


def test_ceiling_answers_each_path_with_its_body():
    app = create_app({"GET /a?page=2": b'{"data":[1,2]}', "POST /b": b'{"data":{}}'})
    seen = {}

    def start_response(status, headers):
        seen["status"], seen["headers"] = status, dict(headers)

    body = b"".join(app({"REQUEST_METHOD": "GET", "PATH_INFO": "/a", "QUERY_STRING": "page=2"}, start_response))
    assert body == b'{"data":[1,2]}'
    assert seen["status"] == "200 OK" and seen["headers"]["Content-Length"] == str(len(body))
    # anything else gets the smallest body known
    body = b"".join(app({"REQUEST_METHOD": "GET", "PATH_INFO": "/zzz"}, start_response))
    assert body == b'{"data":{}}'


def test_flask_floor_answers_the_same_bodies_through_flask():
    app = create_flask_app({"GET /a?page=2": b'{"data":[1,2]}', "POST /b": b'{"data":{}}'})
    assert [rule.rule for rule in app.url_map.iter_rules()] == ["/<path:path>"]  # one route, no /static
    client = app.test_client()
    assert client.get("/a?page=2").data == b'{"data":[1,2]}'
    assert client.post("/b").data == b'{"data":{}}'
    response = client.get("/zzz")
    assert response.data == b'{"data":{}}' and response.mimetype == "application/json"


def test_ceiling_runs_with_the_mock_s_gunicorn_settings():
    """The ceiling is only a ceiling on the mock's own server settings."""
    from mock_server.serving import gunicorn_options

    opts = serve_ceiling.options("127.0.0.1", 1, 2)
    assert opts == gunicorn_options("127.0.0.1", 1, 2)


# --- live: the ceiling under gunicorn, driven by wrk for one second ------------------------------

def test_wrk_drives_the_ceiling(tmp_path):
    _need("wrk")
    bodies = {"GET /api/x": json.dumps({"data": [], "message": "ok"}),
              "POST /api/v": json.dumps({"data": {"viewCount": 7}, "message": "ok"})}
    (tmp_path / "bodies.json").write_text(json.dumps(bodies))
    port = h.free_port()
    env = dict(os.environ, BENCH_CEILING_BODIES=str(tmp_path / "bodies.json"))
    server = h.Server("ceiling", run.ceiling_argv(port, 1), port, env=env, log_path=tmp_path / "ceiling.log")
    settings = h.WrkSettings(duration=1, warmup=0, connections=4, threads=1, timeout=5)
    with server:
        server.start(timeout=60)
        got = h.run_wrk(shutil.which("wrk"), server.base + "/api/x", settings)
        posted = h.run_wrk(shutil.which("wrk"), server.base + "/api/v", settings, method="POST", count=True,
                           midway=lambda: h.connection_split(server.proc.pid, server.port))
        memory = server.memory()
    assert got["source"] == "lua"
    assert got["requests"] > 0 and got["errors"] == 0
    assert 0 < got["p50_ms"] <= got["p99_ms"]
    # the counting script saw every answer, and the fixed body's viewCount repeats in all but one
    assert posted["sent"] >= posted["answered_2xx"] == posted["requests"] > 0
    assert posted["with_view_count"] == posted["answered_2xx"]
    assert posted["duplicate_view_counts"] == posted["answered_2xx"] - 1
    assert posted["min_view_count"] == posted["max_view_count"] == 7
    assert memory["processes"] >= 2 and memory["peak_tree_rss_mb"] > 0
    assert sum(posted["midway"]) == 4  # wrk's 4 connections, all held by the one worker
    assert server.proc.poll() is not None  # the process group is gone


# --- hotspots.py: summing py-spy's collapsed stacks ----------------------------------------------

def test_hotspots_sums_collapsed_stacks_per_function_and_phase():
    import hotspots

    collapsed = "\n".join([
        'process 1:"gunicorn";Thread.run (threading.py:982);Flask.wsgi_app (/x/site-packages/flask/app.py:1);'
        'Flask.full_dispatch_request (/x/site-packages/flask/app.py:2);'
        'Flask.dispatch_request (/x/site-packages/flask/app.py:3);'
        'SQLiteStore.audit_logs (/work/main/mock_server/store/sqlite.py:480) 6',
        'process 1:"gunicorn";Thread.run (threading.py:982);Flask.wsgi_app (/x/site-packages/flask/app.py:1);'
        'Flask.full_dispatch_request (/x/site-packages/flask/app.py:2);'
        '_before_request (/work/main/mock_server/app.py:10);_digest (/work/main/mock_server/auth.py:5) 3',
        'process 1:"gunicorn";Thread.run (threading.py:982);select (selectors.py:468) 90',
        "not a stack line",
        'process 1:"gunicorn";Thread.run (threading.py:982);'
        'Message.parse_headers (/x/site-packages/gunicorn/http/message.py:7) 1',
    ])
    stacks = hotspots.parse_collapsed(collapsed)
    assert len(stacks) == 4
    result = hotspots.summarize(stacks, top=10)
    assert (result["samples"], result["idle_samples"], result["busy_samples"]) == (100, 90, 10)
    assert dict(result["self_pct"]) == {"SQLiteStore.audit_logs (mock_server/store/sqlite.py)": 60.0,
                                        "_digest (mock_server/auth.py)": 30.0,
                                        "Message.parse_headers (gunicorn/http/message.py)": 10.0}
    phases = dict(result["phases_pct"])
    assert phases["handler + store"] == 60.0
    assert phases["mock before_request (auth, request validation, request id, faults)"] == 30.0
    assert phases["gunicorn request parsing"] == 10.0
    inclusive = dict(result["inclusive_pct"])
    assert inclusive["_before_request (mock_server/app.py)"] == 30.0
    assert not any("threading.py" in name for name in inclusive)  # plumbing left out



# --- cpu_split.py: perf's reports, summed per place and per system call ------------------------------

PERF_DSO = """\
# Samples: 1K of event 'cpu-clock:ppp'
#
# Overhead       Samples  Shared Object
# ........  ............  ....................
#
    50.00%           500  libpython3.11.so.1.0
    30.00%           300  [kernel.kallsyms]
    10.00%           100  libsqlite3.so.0.8.6
     8.00%            80  libc.so.6
     2.00%            20  libcrypto.so.3
"""

PERF_SYMS = """\
# Children      Self       Samples  Symbol
    12.00%     0.10%             1  [k] __x64_sys_futex
     3.00%     0.00%             0  [k] __x64_sys_pwrite64
     1.00%     1.00%            10  [.] _PyEval_EvalFrameDefault
"""


def test_cpu_split_turns_perf_samples_into_microseconds_per_request():
    import cpu_split

    dsos = cpu_split.parse_dso_report(PERF_DSO)
    assert dsos == {"libpython3.11.so.1.0": 500, "[kernel.kallsyms]": 300, "libsqlite3.so.0.8.6": 100,
                    "libc.so.6": 80, "libcrypto.so.3": 20}
    calls = cpu_split.parse_syscall_report(PERF_SYMS)
    assert calls == {"futex": 12.0, "pwrite64": 3.0}
    # 1,000 samples at 1,000 Hz over 2 s = 1 CPU second; 500 requests: 2,000 us each
    r = cpu_split.split(dsos, calls, seconds=2, rate=1000, requests=500)
    assert r["us_per_request"] == pytest.approx(2000)
    assert r["cores"] == pytest.approx(0.5)
    assert r["places_us"] == pytest.approx({"Python": 1000, "SQLite": 200, "C library": 160, "kernel": 600,
                                            "other": 40})
    assert r["syscalls_us"]["futex"] == pytest.approx(240)
    assert r["syscalls_us"]["pwrite64"] == pytest.approx(60)
    assert r["syscalls_us"]["flock"] == 0

def test_listening_pids_finds_the_owner_of_a_listening_socket():
    import socket

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        assert os.getpid() in h.listening_pids(listener.getsockname()[1])


def test_split_text():
    assert run.split_text([31, 1]) == "31+1"
    assert run.split_text([[32], [16, 16]]) == "32|16+16"
    assert run.split_text(None) == "-"


# --- run.py: the operations, the comparisons -----------------------------------------------------

def test_every_read_is_measured_with_and_without_an_origin():
    ops = run.measured_operations()
    reads = [op for op in ops if op[2] == "GET"]
    assert len(reads) == 2 * len(run.READS)
    assert [op[0] for op in ops if op[2] == "POST"] == ["view"]
    for key in run.READS:
        plain = next(op for op in ops if op[0] == key)
        origin = next(op for op in ops if op[0] == key + run.ORIGIN_SUFFIX)
        assert plain[4] == {} and origin[4] == {"Origin": "http://localhost:5173"}
        assert plain[3] == origin[3]  # the same path


def test_compare_judges_each_mock_against_the_flask_floor_and_prism():
    def r(rps, p99, **extra):
        return {"rps": rps, "p99_ms": p99, **extra}

    ok = {"ok": True}
    results = {
        "mock": {"stats": r(900, 10), "view": r(600, 20, count_check=ok)},
        "mock-postgres": {"stats": r(800, 30), "view": r(400, 20, count_check={"ok": False})},
        "flask-floor": {"stats": r(1000, 10), "view": r(1000, 10)},
        "ceiling": {"stats": r(2000, 5), "view": r(2000, 5)},
        "prism-static": {"stats": r(400, 50), "view": r(400, 50)},
    }
    ops = run.measured_operations(["stats", "view"])
    c = run.compare(results, ops)
    mock, pg = c["stats"]["mocks"]["mock"], c["stats"]["mocks"]["mock-postgres"]
    assert (mock["rps_vs_flask_floor"], mock["rps_vs_ceiling"], mock["rps_vs_prism_static"]) == (0.9, 0.45, 2.25)
    assert list(mock["targets"].values()) == ["met", "met", "met"]
    assert list(pg["targets"].values()) == ["NOT MET", "met", "NOT MET"]  # 0.8x; 2x; p99 3x
    assert mock["rps_vs_prism_dynamic"] is None
    view, view_pg = c["view"]["mocks"]["mock"], c["view"]["mocks"]["mock-postgres"]
    assert list(view["targets"].values()) == ["met", "met", "met"]  # 0.6x, 1.5x, counts ok
    assert list(view_pg["targets"].values()) == ["NOT MET", "NOT MET", "NOT MET"]  # 0.4x, 1.0x, counts
    assert c["stats"]["flask_floor_vs_ceiling"] == 0.5
    report = {"comparisons": c, "startup": {"default serve": {"median_s": 0.5}}}
    assert run.target_summary(report) == {"met": 8, "NOT MET": 5, "n/a": 0}


# --- fixed_rate.py: the plan, hey's CSV, the window, the count check --------------------------------

HEY_CSV = """\
response-time,DNS+dialup,DNS,Request-write,Response-delay,Response-read,status-code,offset
0.0021,0.0008,0.0000,0.0001,0.0009,0.0001,200,0.2055
0.0029,0.0004,0.0000,0.0001,0.0022,0.0001,200,1.2055
0.0120,0.0003,0.0000,0.0001,0.0015,0.0000,500,1.4058
0.0040,0.0007,0.0000,0.0000,0.0011,0.0002,200,2.9057
0.0050,0.0007,0.0000,0.0000,0.0011,0.0002,200,3.1000
"""


def test_plan_splits_the_rate_over_hey_processes_and_workers():
    streams = fixed_rate.plan(1000, 0.1, 50, run.READS)
    assert len(streams) == len(run.READS) + 1
    assert sum(s["rate"] for s in streams) == pytest.approx(1000)
    assert [s["kind"] for s in streams].count("post") == 1
    for s in streams:
        assert s["worker_rate"] <= 50 + 1e-9
        assert s["workers"] * s["worker_rate"] == pytest.approx(s["rate"])
    read = streams[0]
    assert (read["rate"], read["workers"], read["worker_rate"]) == (150, 3, 50)
    assert (streams[-1]["op"], streams[-1]["workers"]) == ("view", 2)


def test_hey_argv_asks_for_a_fixed_rate_per_worker_and_csv():
    argv = fixed_rate.hey_argv("hey", "http://x/y", "POST", {"workers": 3, "worker_rate": 50.0}, 11, 5,
                               {"Origin": "http://localhost:5173"})
    assert argv[:9] == ["hey", "-z", "11s", "-c", "3", "-q", "50", "-t", "5"]
    assert "csv" in argv and argv[argv.index("-m") + 1] == "POST"
    assert "Origin: http://localhost:5173" in argv and argv[-1] == "http://x/y"


def test_parses_hey_csv_and_takes_exact_percentiles():
    rows = fixed_rate.parse_hey_csv(HEY_CSV)
    assert rows[0] == (pytest.approx(2.1), 200, 0.2055)
    assert len(rows) == 5
    values = sorted(ms for ms, _, _ in rows)
    assert fixed_rate.percentile(values, 50) == pytest.approx(4.0)
    assert fixed_rate.percentile(values, 99) == pytest.approx(12.0)
    assert fixed_rate.percentile([], 50) is None
    with pytest.raises(ValueError):
        fixed_rate.parse_hey_csv("Summary:\n  Total: 1 secs\n")


def test_summarize_keeps_the_window_and_combines_the_streams():
    streams = [{"op": "stats", "kind": "read", "rate": 2.0}, {"op": "view", "kind": "post", "rate": 1.0}]
    rows = fixed_rate.parse_hey_csv(HEY_CSV)
    # the window is [1, 3): rows 2, 3 and 4 of each stream
    r = fixed_rate.summarize(streams, [rows, rows], settle=1.0, duration=2.0)
    assert r["reads"]["count"] == 3 and r["posts"]["count"] == 3
    assert r["achieved_rps"] == 3.0 and r["offered_rps"] == 3.0 and r["missing"] == 0
    assert r["non2xx"] == 2
    assert r["p50_ms"] == pytest.approx(4.0) and r["p99_ms"] == pytest.approx(12.0)
    assert r["posts_answered_2xx_including_settle"] == 4  # every POST answered 2xx, in the window or not
    assert r["operations"]["stats"]["achieved_rps"] == 1.5


def test_fixed_rate_count_check():
    assert fixed_rate.count_check(10, 20, 10, 0)["ok"]
    lost = fixed_rate.count_check(10, 18, 10, 0)
    assert not lost["ok"] and lost["lost"] == 2
    extra = fixed_rate.count_check(10, 23, 10, 0)
    assert not extra["ok"] and extra["extra"] == 3
    assert not fixed_rate.count_check(10, 20, 10, 1)["ok"]


# --- the bench's PostgreSQL ----------------------------------------------------------------------

@pytest.mark.skipif(postgres.unavailable() is not None, reason=f"no PostgreSQL here: {postgres.unavailable()}")
@pytest.mark.parametrize("starter", ["running_postgres", "standin_postgres"])
def test_running_postgres_gives_a_database_and_removes_it(starter):
    psql = postgres.bin_dir() / "psql"
    settings = {"work_mem": "8MB"} if starter == "standin_postgres" else None
    with getattr(postgres, starter)(settings) as url:
        assert url.startswith("postgresql://postgres@127.0.0.1:")
        got = subprocess.run([str(psql), url, "-Atc", "select current_database(), current_setting('fsync')"],
                             capture_output=True, text=True, timeout=30)
        assert got.returncode == 0 and got.stdout.strip() == url.rsplit("/", 1)[1] + "|off", got.stderr
    gone = subprocess.run([str(psql), url, "-Atc", "select 1"], capture_output=True, text=True, timeout=30)
    assert gone.returncode != 0  # the server is stopped


def test_charts_draws_pngs_of_the_example_jsons(tmp_path):
    """bench/charts.py on the committed example JSONs (run.py, fixed_rate.py, and scaling.py's older format):
    every chart comes out as a non-empty PNG."""
    try:
        import matplotlib  # noqa: F401, PLC0415
    except ImportError:
        pytest.skip("matplotlib is not installed (pip install -e '.[bench]' or '.[test]'): no charts to check")
    results = BENCH / "results"
    jsons = [results / f"example-{name}.json" for name in ("run", "fixed-rate", "scaling")]
    assert charts.main([*map(str, jsons), "--out", str(tmp_path)]) == 0
    names = sorted(p.name for p in tmp_path.glob("*.png"))
    assert names == ["example-fixed-rate-latency.png", "example-run-p99.png", "example-run-rps.png",
                     "example-scaling-curves.png"]
    for name in names:
        data = (tmp_path / name).read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 10_000, name


# --- live: run.py --quick and fixed_rate.py --quick ------------------------------------------------

def _run_script(script: str, args: list[str], out: Path) -> dict:
    proc = subprocess.run([sys.executable, str(BENCH / script), *args, "--out", str(out)], capture_output=True,
                          text=True, timeout=900, cwd=BENCH.parent, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-3000:]
    written = sorted(out.glob("*.json"))
    assert len(written) == 1, proc.stdout[-2000:]
    return {"report": json.loads(written[0].read_text()), "stdout": proc.stdout}


def _need(tool: str) -> None:
    """The load generators come from Debian; CI installs them and sets INSIGHTS_MOCK_REQUIRE_BENCH_TOOLS=1, so
    a missing one fails there instead of skipping the bench's only end-to-end runs."""
    if shutil.which(tool) is None:
        message = f"{tool} is not installed (apt-get install {tool})"
        if os.environ.get("INSIGHTS_MOCK_REQUIRE_BENCH_TOOLS") == "1":
            pytest.fail(message + ", and INSIGHTS_MOCK_REQUIRE_BENCH_TOOLS=1 requires it")
        pytest.skip(message)


def _skip_unless_ran(report: dict, name: str) -> dict:
    info = report["servers"].get(name)
    assert info is not None, f"{name} was asked for and is neither measured nor skipped"
    assert not info.get("failed"), f"{name} failed to start: {info['failed']}"  # not a skip: a bug
    if info.get("skipped"):
        pytest.skip(f"{name} did not run: {info['skipped']}")
    return report["results"][name]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    _need("wrk")
    return _run_script("run.py", ["--quick", "--servers", "mock,mock-postgres,flask-floor", "--ops",
                                  "stats,stats+origin,view", "--no-install"], tmp_path_factory.mktemp("run"))


def test_run_quick_measures_the_mock_and_the_flask_floor(quick_run):
    report, stdout = quick_run["report"], quick_run["stdout"]
    for name in ("mock", "flask-floor"):
        for key in ("stats", "stats+origin", "view"):
            r = report["results"][name][key]
            assert r["requests"] > 0 and r["errors"] == 0 and r["probe_status"] == 200, (name, key, r)
    assert report["results"]["mock"]["stats+origin"]["allow_origin"] == run.ORIGIN  # the origin is allowed
    assert report["results"]["mock"]["view"]["count_check"]["ok"]
    mock = report["comparisons"]["stats"]["mocks"]["mock"]
    judged = {t: v for t, v in mock["targets"].items() if "prism" not in t}  # no Prism in this run
    assert len(judged) == 2 and set(judged.values()) <= {"met", "NOT MET"}  # judged: both servers ran
    assert report["startup"]["default serve"]["median_s"] > 0
    assert "default start-up" in stdout and "rps >= 0.9x flask-floor" in stdout
    assert "chart written to" in stdout or "note: no charts" in stdout


def test_run_quick_measures_mock_postgres_when_it_can(quick_run):
    results = _skip_unless_ran(quick_run["report"], "mock-postgres")
    for key in ("stats", "stats+origin", "view"):
        assert results[key]["requests"] > 0 and results[key]["errors"] == 0, (key, results[key])
    assert results["view"]["count_check"]["ok"]


@pytest.fixture(scope="module")
def fixed_rate_run(tmp_path_factory):
    _need("hey")
    return _run_script("fixed_rate.py", ["--quick", "--servers", "mock,mock-postgres,flask-floor,prism-static",
                                         "--no-install"], tmp_path_factory.mktemp("fixed-rate"))


def _answered_everything_asked(r: dict, report: dict) -> None:
    assert "error" not in r, r
    window = report["settings"]["duration"]
    assert r["reads"]["count"] > 0 and r["posts"]["count"] > 0
    assert r["reads"]["count"] + r["posts"]["count"] == round(r["achieved_rps"] * window)
    assert set(r["operations"]) == {*run.READS, "view"}
    assert 0 < r["p50_ms"] <= r["p90_ms"] <= r["p99_ms"] <= r["max_ms"]


def test_fixed_rate_quick_measures_the_mock_and_the_flask_floor(fixed_rate_run):
    report, stdout = fixed_rate_run["report"], fixed_rate_run["stdout"]
    for name in ("mock", "flask-floor"):
        r = report["results"][name]
        _answered_everything_asked(r, report)
        assert r["non2xx"] == 0, r
    assert report["results"]["mock"]["count_check"]["ok"]
    assert report["comparisons"]["mock"]["target"] in ("met", "NOT MET")
    assert "p99 <= 2x flask-floor p99" in stdout


def test_fixed_rate_quick_measures_prism_when_npx_is_here(fixed_rate_run):
    if shutil.which("npx") is None:
        pytest.skip("npx (Node.js) is not installed: prism-static not measured")
    _answered_everything_asked(_skip_unless_ran(fixed_rate_run["report"], "prism-static"), fixed_rate_run["report"])


def test_fixed_rate_quick_measures_mock_postgres_when_it_can(fixed_rate_run):
    r = _skip_unless_ran(fixed_rate_run["report"], "mock-postgres")
    _answered_everything_asked(r, fixed_rate_run["report"])
    assert r["non2xx"] == 0 and r["count_check"]["ok"]
