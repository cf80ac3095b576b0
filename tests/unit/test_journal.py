"""mock_server/journal/: GET/DELETE /__admin/requests, filters, the bounded ring, redaction, several workers."""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from mock_helpers import ADMIN, AUDITOR, TOKENS, UNKNOWN_UUID, bearer, component_validator, start, stop, url
from mock_server.journal import BODY_LIMIT, RAW_BODY_CAP, Journal, Redactor, body_text, fingerprint, redacted

ALL_TOKENS = [t["token"] for t in TOKENS]
MOST_VIEWED = url("/dashboard/most-viewed")


def journal(client, query: str = "") -> list[dict]:
    response = client.get("/__admin/requests" + query)
    assert response.status_code == 200, response.json
    return response.json["entries"]


def test_an_entry_has_the_request_and_the_response(client):
    client.get(MOST_VIEWED + "?limit=2", headers={**ADMIN, "X-Request-Id": "req-1", "Accept": "application/json"})
    [entry] = journal(client)
    assert entry["method"] == "GET" and entry["path"] == MOST_VIEWED and entry["query"] == {"limit": ["2"]}
    assert entry["operationId"] == "getMostViewedDashboards" and entry["status"] == 200
    assert entry["requestId"] == "req-1" and entry["user"] == "dana.kim@acme.example"
    assert entry["durationMs"] > 0 and entry["timestamp"].endswith("Z") and isinstance(entry["worker"], int)
    assert entry["request"]["headers"]["Accept"] == "application/json"
    assert entry["request"]["headers"]["Authorization"] == f"Bearer …(redacted #{fingerprint('mock-admin-token')})"
    response = entry["response"]
    assert response["status"] == 200 and response["headers"]["X-Request-Id"] == "req-1"
    assert response["headers"]["Content-Type"] == "application/json" and not response["bodyTruncated"]
    assert len(json.loads(response["body"])["data"]) == 2


def test_admin_calls_are_not_journaled_but_every_api_request_is(client):
    client.get("/__admin/health")
    client.post("/__admin/reset")
    client.get(url("/dashboard/recently-viewed"))  # 401
    client.get("/nowhere")  # 404 outside the spec
    client.get("/openapi.yaml")
    entries = journal(client)
    assert [(e["path"], e["status"], e["operationId"]) for e in entries] == [
        ("/openapi.yaml", 200, None), ("/nowhere", 404, None),
        (url("/dashboard/recently-viewed"), 401, "getRecentlyViewedDashboards")]
    # No token, no user; the challenge is kept as sent (it holds no secret).
    assert entries[2]["user"] is None
    assert entries[2]["response"]["headers"]["WWW-Authenticate"].startswith('Bearer realm="insights"')


def test_filters(client):
    client.get(MOST_VIEWED, headers=ADMIN)
    client.get(MOST_VIEWED, headers=AUDITOR)  # 403
    client.post(url(f"/dashboard/{UNKNOWN_UUID}/view"), headers=ADMIN)
    client.get(url("/0123456789abcdef01234567"), headers=AUDITOR)  # 404
    client.get(MOST_VIEWED + "?__code=500")
    assert len(journal(client)) == 5
    assert [e["status"] for e in journal(client, "?limit=2")] == [500, 404]
    assert {e["status"] for e in journal(client, "?operationId=getMostViewedDashboards")} == {200, 403, 500}
    assert [e["status"] for e in journal(client, "?status=4xx")] == [404, 403]
    assert [e["status"] for e in journal(client, "?status=403")] == [403]
    assert [e["method"] for e in journal(client, "?method=post")] == ["POST"]
    assert journal(client, "?since=2999-01-01T00:00:00Z") == []
    assert len(journal(client, "?since=2000-01-01T00:00:00Z")) == 5


@pytest.mark.parametrize("query", ["?limit=0", "?limit=x", "?status=teapot", "?status=6xx", "?since=yesterday",
                                   "?since=2026-11-25T12:00:00"])
def test_bad_filters_are_a_400_in_the_error_schema(client, query):
    response = client.get("/__admin/requests" + query)
    assert response.status_code == 400
    component_validator("Error").validate(response.json)
    assert response.json["details"][0]["location"] == "query"


@pytest.mark.parametrize("query", ["?user=a@b.c", "?operationid=getAuditLog", "?limit=5&Status=404"])
def test_an_unknown_filter_is_a_400_naming_it_not_everything(client, query):
    name = query.split("&")[-1].lstrip("?").split("=")[0]
    response = client.get("/__admin/requests" + query)
    assert response.status_code == 400
    [detail] = response.json["details"]
    assert detail["name"] == name and "operationId" in detail["message"]


def test_the_ring_is_bounded_and_can_be_cleared(app_factory):
    client = app_factory(JOURNAL_SIZE=3).test_client()
    for limit in range(1, 6):
        client.get(MOST_VIEWED + f"?limit={limit}", headers=ADMIN)
    assert [e["query"]["limit"] for e in journal(client)] == [["5"], ["4"], ["3"]]
    cleared = client.delete("/__admin/requests")
    assert cleared.status_code == 200 and cleared.json["status"] == "cleared"
    assert journal(client) == []


def test_size_zero_turns_it_off(app_factory):
    client = app_factory(JOURNAL_SIZE=0).test_client()
    client.get(MOST_VIEWED, headers=ADMIN)
    body = client.get("/__admin/requests").json
    assert body["enabled"] is False and body["entries"] == []
    assert client.get("/__admin/health").json["journal"] == {"size": 0, "shared": False}


def test_bodies_are_bounded_with_a_marker(client):
    client.post(url(f"/dashboard/{UNKNOWN_UUID}/view"), headers={**ADMIN, "Content-Type": "application/json"},
                data=json.dumps({"padding": "x" * 10_000}))
    client.get(url(f"/dashboard/{UNKNOWN_UUID}/logs?page_size=1000"), headers=AUDITOR)
    client.get("/openapi.yaml")
    spec, _, view = journal(client)
    assert view["request"]["bodyTruncated"] is True
    assert view["request"]["body"].endswith("…[truncated: 10015 bytes in all]")
    assert len(view["request"]["body"].encode()) < BODY_LIMIT + 100
    assert spec["response"]["bodyTruncated"] is True and "[truncated:" in spec["response"]["body"]


def test_the_journal_endpoints_are_guarded_like_the_others(app_factory):
    client = app_factory(HOST="0.0.0.0", ADMIN_TOKEN="s3cret-admin").test_client()
    assert client.get("/__admin/requests").status_code == 401
    assert client.delete("/__admin/requests").status_code == 401
    assert client.get("/__admin/requests", headers=bearer("s3cret-admin")).status_code == 200
    assert app_factory(HOST="0.0.0.0").test_client().get("/__admin/requests").status_code == 401  # locked


# --- redaction --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["ring", "files"])
def test_no_token_ever_appears_in_the_journal(app_factory, tmp_path, mode):
    # In file mode the entries are redacted and written by the process's writer thread (or by the flush a
    # read makes): what reaches the disk is checked too.
    extra = {"JOURNAL_DIR": str(tmp_path / "journal")} if mode == "files" else {}
    app = app_factory(ADMIN_TOKEN="s3cret-admin-token", **extra)
    client = app.test_client()
    admin = bearer("s3cret-admin-token")
    secrets = ALL_TOKENS + ["s3cret-admin-token"]
    for token in secrets:
        client.get(MOST_VIEWED, headers=bearer(token))
        client.get(MOST_VIEWED + f"?access_token={token}&token={token}&q={token}", headers=ADMIN)
        client.get(url(f"/dashboard/{token}/stats"), headers=ADMIN)  # a token pasted into the path (400)
        client.get(MOST_VIEWED, headers={**ADMIN, "X-Request-Id": token, "X-Api-Key": token,
                                         "Cookie": f"session={token}", "X-Debug": f"sent {token} here",
                                         "Prefer": f"code={token}", "Referer": f"http://app.local/?token={token}"})
        client.post(url(f"/dashboard/{UNKNOWN_UUID}/view"), headers={**ADMIN, "Content-Type": "application/json"},
                    data=json.dumps({"token": token, "note": f"Bearer {token}", "nested": {"password": token}}))
        client.post(url(f"/dashboard/{UNKNOWN_UUID}/view"), data=f"access_token={token}&x=1",
                    headers={**ADMIN, "Content-Type": "application/x-www-form-urlencoded"})
        client.post(url(f"/dashboard/{UNKNOWN_UUID}/view"), data=f"plain text with {token} inside",
                    headers={**ADMIN, "Content-Type": "text/plain"})
    client.get(MOST_VIEWED, headers={"Authorization": "Bearer some-unknown-secret-value"})
    raw = client.get("/__admin/requests?limit=1000", headers=admin).get_data(as_text=True)
    assert len(json.loads(raw)["entries"]) == 7 * len(secrets) + 1
    for secret in secrets + ["some-unknown-secret-value"]:
        assert secret not in raw
    # Tokens stay distinguishable: each has its own stable fingerprint.
    fingerprints = {fingerprint(t) for t in secrets}
    assert len(fingerprints) == len(secrets) and all(f"#{fp}" in raw for fp in fingerprints)
    assert "access_token=…(redacted #" in raw and "#" + fingerprint("mock-admin-token") + ") #" not in raw
    if mode == "files":
        on_disk = b"".join(p.read_bytes() for p in (tmp_path / "journal").glob("*.jsonl"))
        assert on_disk.count(b"\n") == 7 * len(secrets) + 1
        for secret in secrets + ["some-unknown-secret-value"]:
            assert secret.encode() not in on_disk


def test_the_redactor_keeps_what_is_not_secret():
    r = Redactor(["mock-admin-token"])
    challenge = 'Bearer realm="insights", error="invalid_token", error_description="The access token expired"'
    assert r.header("WWW-Authenticate", challenge) == challenge
    assert r.text('{"message": "Authentication required - Provide a Bearer token"}') != ""
    assert r.header("Content-Type", "application/json") == "application/json"
    assert r.query([("limit", "5"), ("page", "2")]) == {"limit": ["5"], "page": ["2"]}
    assert r.header("Authorization", "Basic dXNlcjpwYXNz") == f"Basic …(redacted #{fingerprint('dXNlcjpwYXNz')})"
    assert r.text("id mock-admin-token end") == f"id …(redacted #{fingerprint('mock-admin-token')}) end"


def _raw(path: str) -> dict:
    return dict(t_ns=1, worker=1, method="GET", path=path, query=[], request_headers=[], request_body=b"",
                request_mimetype=None, status=200, response_headers=[], response_body=b"", response_mimetype=None,
                duration_ms=1.0, request_id=None, operation_id=None, user=None)


def test_entries_in_memory_are_redacted_when_read_with_old_and_new_tokens():
    # The ring outlives a reload (mock_server.reload); the app then gives it a redactor knowing the tokens
    # of the old file and of the new one, and every entry kept is redacted with it when read.
    journal_ = Journal(10, ["old-token"])
    journal_.record(**_raw("/x/old-token/new-token"))
    assert journal_.entries()[0]["path"] == f"/x/{redacted('old-token')}/new-token"
    journal_.redactor = Redactor([*journal_.redactor.secrets, "new-token"])
    assert journal_.entries()[0]["path"] == f"/x/{redacted('old-token')}/{redacted('new-token')}"


def test_file_entries_are_redacted_before_they_are_written(tmp_path):
    journal_ = Journal(10, ["mock-admin-token"], tmp_path, flush_interval_s=3600)
    journal_.record(**{**_raw("/p/mock-admin-token"),
                       "request_headers": [("Authorization", "Bearer mock-admin-token")]})
    assert journal_.flush() == 1  # written by the process's writer thread, or by a flush like this one
    on_disk = b"".join(p.read_bytes() for p in tmp_path.glob("*.jsonl"))
    assert b"mock-admin-token" not in on_disk and redacted("mock-admin-token").encode() in on_disk


# --- several workers -------------------------------------------------------------------------------------

def test_workers_sharing_a_journal_directory_see_each_others_requests(tmp_path, app_factory):
    directory = str(tmp_path / "journal")
    first = app_factory(JOURNAL_DIR=directory, JOURNAL_SIZE=4).test_client()
    second = app_factory(JOURNAL_DIR=directory, JOURNAL_SIZE=4).test_client()
    first.get(MOST_VIEWED + "?limit=1", headers=ADMIN)
    second.get(MOST_VIEWED + "?limit=2", headers=ADMIN)
    first.get(MOST_VIEWED + "?limit=3", headers=ADMIN)
    assert [e["query"]["limit"] for e in journal(second)] == [["3"], ["2"], ["1"]]
    assert second.get("/__admin/health").json["journal"] == {"size": 4, "shared": True}
    for limit in range(4, 12):  # past the size: each process's file rotates, the merged view stays bounded
        (first if limit % 2 else second).get(MOST_VIEWED + f"?limit={limit}", headers=ADMIN)
    assert [e["query"]["limit"][0] for e in journal(first)] == ["11", "10", "9", "8"]
    assert sum(1 for _ in (tmp_path / "journal").glob("*.jsonl")) <= 4  # current + previous, per process
    first.delete("/__admin/requests")
    assert journal(second) == []
    second.get(MOST_VIEWED + "?limit=12", headers=ADMIN)
    assert [e["query"]["limit"] for e in journal(first)] == [["12"]]


def test_a_half_written_line_is_skipped(tmp_path):
    journal_ = Journal(10, [], tmp_path)
    journal_.record(**_raw("/a"))
    (tmp_path / "999.jsonl").write_bytes(b'{"_t": 2, "pa')
    assert [e["path"] for e in journal_.entries()] == ["/a"]


# --- the shortcuts of redaction --------------------------------------------------------------------------

@pytest.mark.parametrize("secrets", [ALL_TOKENS + ["s3cret-admin-token"],  # one needle: "mock-", and one more
                                     [f"tok{i}-{random.Random(i).getrandbits(96):x}" for i in range(6)]])
def test_the_byte_shortcut_gives_what_full_redaction_gives(secrets):
    # Response bodies skip decoding and redaction when no needle (a prefix shared by secrets) is in the part
    # kept; the result must be the full path's, secrets straddling the cut included.
    r = Redactor(secrets)
    rng = random.Random(5)
    longest = max(map(len, secrets))
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789-_\":,{} é–"
    for case in range(400):
        length = rng.choice([50, 500, BODY_LIMIT - 10, BODY_LIMIT + 30, 3 * BODY_LIMIT, RAW_BODY_CAP + 100])
        text = "".join(rng.choice(alphabet) for _ in range(length))
        if rng.random() < 0.8:  # one secret, anywhere or around the cut
            near_cut = BODY_LIMIT - rng.randrange(longest + 2)  # a byte offset: the cut is in bytes
            at = rng.choice([rng.randrange(len(text)), len(text.encode()[:near_cut].decode("utf-8", "ignore"))])
            text = text[:at] + rng.choice(secrets) + text[at:]
        data = text.encode()
        size = len(data)
        captured = data[:RAW_BODY_CAP]  # cut as app.py captures, possibly inside a character
        fast = body_text(captured, "application/json", r.known, size, r.known_free)
        full = body_text(captured, "application/json", r.known, size)
        assert fast == full, case
        assert not any(secret in fast[0] for secret in secrets)
        assert not any(secret[:6] in fast[0][-80:] for secret in secrets)  # no readable prefix at the cut


def test_needles_are_prefixes_of_the_secrets():
    r = Redactor(["mock-a-token", "mock-bb-token", "xyz", "abcdefgh"])
    assert r.known("mock-nothing") == "mock-nothing"  # a needle alone is no secret
    assert r.known("..mock-bb-token..xyz") == f"..{redacted('mock-bb-token')}..{redacted('xyz')}"
    assert r.known_free(b"mock-nothing xy") is False and r.known_free(b"nothing here") is True
    assert r.known_free(b"x" * 9 + b"abcdefgh", end=10) is False  # across the cut: it counts
    assert r.known_free(b"x" * 10 + b"abcdefgh", end=10) is True  # wholly after the cut: cut anyway


# --- file mode: the writer thread, the read barrier, fork, exit -----------------------------------------

def _raw_at(path: str, t_ns: int) -> dict:
    return {**_raw(path), "t_ns": t_ns}


def test_a_read_sees_what_another_writer_holds_and_clear_hides_it(tmp_path):
    # flush_interval_s=3600: the writers never write on their own during the test; only a read's barrier
    # (or the reader's own flush) can put these entries on disk.
    first = Journal(10, ["mock-admin-token"], tmp_path, flush_interval_s=3600)
    second = Journal(10, ["mock-admin-token"], tmp_path, flush_interval_s=3600)
    first.record(**_raw_at("/one/mock-admin-token", time.time_ns()))
    second.record(**_raw_at("/two", time.time_ns()))
    assert list(tmp_path.glob("*.jsonl")) and all(p.stat().st_size == 0 for p in tmp_path.glob("*.jsonl"))
    assert sorted(e["path"] for e in second.entries()) == [f"/one/{redacted('mock-admin-token')}", "/two"]
    assert second.unanswered == 0
    first.record(**_raw_at("/three", time.time_ns()))
    second.clear()  # "/three" is still in first's buffer: written later, it stays hidden
    assert second.entries() == [] and first.entries() == []
    time.sleep(0.001)  # a clock coarser than the nanosecond could otherwise stamp it with the marker's time
    first.record(**_raw_at("/four", time.time_ns()))
    assert [e["path"] for e in second.entries()] == ["/four"]
    first.close()
    second.close()
    assert not list(tmp_path.glob("*.wake"))


def test_the_buffer_is_bounded_and_counts_what_it_skips(tmp_path):
    journal_ = Journal(3, [], tmp_path, flush_interval_s=3600)
    for i in range(1, 8):
        journal_.record(**_raw_at(f"/{i}", i))
    assert journal_.superseded == 4 and len(journal_._ring) == 3
    assert [e["path"] for e in journal_.entries()] == ["/7", "/6", "/5"]
    journal_.close()


def test_the_writer_thread_writes_on_its_own(tmp_path):
    journal_ = Journal(10, ["mock-admin-token"], tmp_path, flush_interval_s=0.01)
    journal_.record(**_raw("/p/mock-admin-token"))
    for _ in range(1000):  # bounded wait (10 s), no read of ours makes it flush
        if any(p.stat().st_size for p in tmp_path.glob("*.jsonl")):
            break
        time.sleep(0.01)
    on_disk = b"".join(p.read_bytes() for p in tmp_path.glob("*.jsonl"))
    assert b"/p/" in on_disk and b"mock-admin-token" not in on_disk
    journal_.close()


def _child_records(directory: str, ready, done) -> None:
    journal_ = _FORKED[directory]
    journal_.record(**_raw("/from-child"))
    ready.set()
    done.wait(30)  # alive (its writer listening) until the parent has read


_FORKED: dict[str, Journal] = {}


def test_a_forked_child_gets_its_own_writer_and_is_read_through_the_barrier(tmp_path):
    journal_ = Journal(10, [], tmp_path, flush_interval_s=3600)
    journal_.record(**_raw("/before-fork"))  # the parent's writer runs; this waits in its buffer
    _FORKED[str(tmp_path)] = journal_
    ctx = multiprocessing.get_context("fork")
    ready, done = ctx.Event(), ctx.Event()
    child = ctx.Process(target=_child_records, args=(str(tmp_path), ready, done))
    child.start()
    try:
        assert ready.wait(30)
        entries = journal_.entries()
        # Each entry once: the child dropped the parent's buffer it inherited, and wrote its own file.
        assert sorted(e["path"] for e in entries) == ["/before-fork", "/from-child"]
        assert {p.name.split("-")[0] for p in tmp_path.glob("*.jsonl")} == {str(os.getpid()), str(child.pid)}
        assert journal_.unanswered == 0
    finally:
        done.set()
        child.join(30)
        _FORKED.clear()
        journal_.close()


_RECORD_AND_EXIT = """
import sys
from mock_server.journal import Journal
journal = Journal(10, ["mock-admin-token"], sys.argv[1], flush_interval_s=3600)
journal.record(t_ns=1, worker=1, method="GET", path="/exiting/mock-admin-token", query=[], request_headers=[],
               request_body=b"", request_mimetype=None, status=200, response_headers=[], response_body=b"",
               response_mimetype=None, duration_ms=1.0, request_id=None, operation_id=None, user=None)
print("recorded", flush=True)
if sys.argv[2] == "wait":
    sys.stdin.read()
"""


def _python(*args: str, **kwargs) -> subprocess.Popen:
    root = Path(__file__).resolve().parents[2]
    return subprocess.Popen([sys.executable, "-c", _RECORD_AND_EXIT, *args], cwd=root, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, **kwargs)


def test_a_process_that_exits_writes_what_it_holds(tmp_path):
    # No flush by the interval (an hour) nor by a read: only the exit can have written it.
    process = _python(str(tmp_path), "exit")
    out, _ = process.communicate(timeout=60)
    assert process.returncode == 0 and out == "recorded\n"
    assert not list(tmp_path.glob("*.wake"))  # nothing left to wait for
    on_disk = b"".join(p.read_bytes() for p in tmp_path.glob("*.jsonl"))
    assert b"/exiting/" in on_disk and b"mock-admin-token" not in on_disk
    assert [e["path"] for e in Journal(10, [], tmp_path).entries()] == [f"/exiting/{redacted('mock-admin-token')}"]


def test_a_killed_writer_does_not_hold_up_reads(tmp_path):
    process = _python(str(tmp_path), "wait")
    try:
        assert process.stdout.readline() == "recorded\n"
        process.send_signal(signal.SIGKILL)  # what it held is lost (documented), and nobody answers its pipe
        process.wait(timeout=30)
    finally:
        process.kill()
        process.communicate()
    reader = Journal(10, [], tmp_path, barrier_timeout_s=600)  # a wait for the dead one would hang the test
    assert reader.entries() == [] and reader.unanswered == 0
    assert not list(tmp_path.glob("*.wake"))  # the dead writer's pipe is removed by the reader that found it


def test_a_bad_capture_is_left_out_not_the_batch(tmp_path, caplog):
    journal_ = Journal(10, [], tmp_path, flush_interval_s=3600)
    journal_.record(**{**_raw("/bad"), "request_body": 12})  # not bytes: make_entry cannot use it
    journal_.record(**_raw("/good"))
    assert journal_.flush() == 2
    assert [e["path"] for e in journal_.entries()] == ["/good"]
    assert "could not be made into an entry" in caplog.text
    journal_.close()


def test_the_writer_of_a_discarded_journal_stops(tmp_path):
    import gc

    journal_ = Journal(10, [], tmp_path, flush_interval_s=0.01)
    journal_.record(**_raw("/a"))
    writer = journal_._writer
    del journal_
    gc.collect()
    writer.thread.join(timeout=30)
    assert not writer.thread.is_alive() and not list(tmp_path.glob("*.wake"))


@pytest.mark.slow
def test_gunicorn_workers_journal_every_request_and_a_stopped_worker_keeps_its_entries():
    process, base = start(["--workers", "2", "--views", "300", "--audit-logs", "200"])
    try:
        requests.delete(base + "/__admin/requests", timeout=10)
        for limit in range(1, 21):  # each on a new connection: both workers answer some
            requests.get(base + MOST_VIEWED + f"?limit={limit}", headers=ADMIN, timeout=10)
        entries = requests.get(base + "/__admin/requests?limit=100", timeout=10).json()["entries"]
        # Read at once, whichever worker answers: the barrier has the other one write first.
        assert [e["query"]["limit"][0] for e in entries] == [str(n) for n in range(20, 0, -1)]
        workers = sorted({e["worker"] for e in entries})
        for limit in range(21, 41):
            requests.get(base + MOST_VIEWED + f"?limit={limit}", headers=ADMIN, timeout=10)
        os.kill(workers[0], signal.SIGTERM)  # a graceful stop (gunicorn starts another): it writes at exit
        for _ in range(300):  # bounded wait (30 s) for that worker to be gone
            try:
                os.kill(workers[0], 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        entries = requests.get(base + "/__admin/requests?limit=100", timeout=10).json()["entries"]
        assert [e["query"]["limit"][0] for e in entries] == [str(n) for n in range(40, 0, -1)]
        assert "mock-admin-token" not in json.dumps(entries)
    finally:
        _, err = stop(process)
    assert "Traceback" not in err


def test_an_entry_from_the_environ_reads_the_request_as_werkzeug_does(app_factory):
    # Both the pipeline and the operator app hand over the WSGI environ; the entry must show the request as
    # werkzeug's Request parses it (the same capture made from werkzeug's lists gives the same entry).
    from werkzeug.wrappers import Request

    from mock_server.app import EXTENSION

    app = app_factory(ADMIN_TOKEN="s3cret-admin-token")
    state = app.extensions[EXTENSION]
    captured = []
    state.default.journal.record_wsgi = lambda environ, **raw: captured.append((dict(environ), raw))
    client = app.test_client()
    client.get(MOST_VIEWED + "?limit=2&limit=3&blank=&q=%C3%A9t%C3%A9&access_token=mock-user-token",
               headers={**ADMIN, "X-Request-Id": "r-1", "Cookie": "session=abc", "X-Custom_Thing": "v"})
    client.post(url(f"/dashboard/{UNKNOWN_UUID}/view"), data='{"password": "mock-admin-token"}',
                headers={**ADMIN, "Content-Type": "Application/JSON; charset=utf-8"})
    client.get(url("/dashboard/%C3%A9t%C3%A9/stats"), headers=bearer("s3cret-admin-token"))
    client.get("/nowhere?x=1")
    assert len(captured) == 4
    redactor = state.default.journal.redactor
    for environ, raw in captured:
        request = Request({k: v for k, v in environ.items() if k != "werkzeug.request"})
        from_environ, from_lists = Journal(10, redactor.secrets), Journal(10, redactor.secrets)
        from_environ.record_wsgi(environ, **raw)
        from_lists.record(method=request.method, path=request.path, query=list(request.args.items(multi=True)),
                          request_headers=list(request.headers.items()), request_mimetype=request.mimetype or None,
                          **raw)
        [entry] = from_environ.entries()
        assert from_lists.entries() == [entry]
        assert entry["method"] in ("GET", "POST") and entry["request"]["headers"]
        assert "mock-user-token" not in json.dumps(entry) and "s3cret-admin-token" not in json.dumps(entry)
