"""Hostile raw HTTP against the mock served for real (werkzeug, and gunicorn with --workers 2).

Requests are written as bytes on a socket so that no client library normalizes them (no re-encoding of
the path, no merging of repeated headers, no Host added). Every answer must be a documented 2xx or a 4xx
whose body is the spec's Error schema, with no traceback and no token in it, and the server must still
answer /__admin/health afterwards.

What the HTTP server itself refuses before Flask sees the request is at the end (SERVER_REFUSALS). werkzeug's
refusals answer in the Error schema (serving._Handler.send_error) and a missing or invalid Host in HTTP/1.1
is a 400 from mock_server/http/host_guard.py on both servers; gunicorn's own refusals (a header field over 8190
bytes, a request line over 4094 bytes, raw non-ASCII bytes in the request line, a malformed request line,
HTTP/2.0, a repeated Host, control bytes in a header) are answered in the Error schema by
mock_server/gunicorn_worker.py instead of gunicorn's HTML page.
"""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass

import jsonschema
import pytest
import requests

from mock_helpers import PREFIX, SPEC, UNKNOWN_OBJECT_ID, UNKNOWN_UUID, start, stop

ADMIN_TOKEN = b"mock-admin-token"
VIEW = f"{PREFIX}/dashboard/{UNKNOWN_UUID}/view".encode()
MOST_VIEWED = f"{PREFIX}/dashboard/most-viewed".encode()
STATS = f"{PREFIX}/dashboard/{UNKNOWN_UUID}/stats".encode()  # documents a 400 (most viewed does not)
ERROR_SCHEMA = {"$ref": "#/components/schemas/Error", "components": SPEC["components"]}
READ_TIMEOUT = 15  # bounded: a hung server fails the test instead of hanging the suite


@dataclass
class Answer:
    status: int
    headers: dict[str, str]  # lower-case names; a repeated header keeps its last value
    body: bytes
    raw: bytes


@pytest.fixture(scope="module", params=["werkzeug", "gunicorn"])
def server(request):
    args = ["--views", "200", "--audit-logs", "100"]
    if request.param == "gunicorn":
        args += ["--workers", "2"]
    process, base = start(args)
    try:
        yield request.param, int(base.rsplit(":", 1)[1]), base
    finally:
        out, err = stop(process)
    # Whatever was sent, the server never logged a crash.
    assert "Traceback" not in err


def send(port: int, data: bytes) -> Answer:
    with socket.create_connection(("127.0.0.1", port), timeout=READ_TIMEOUT) as sock:
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        except OSError:  # broken pipe, reset, or ENOTCONN from shutdown()
            pass  # a server may answer (413) and close before reading an oversized body; read its answer
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    raw = b"".join(chunks)
    head, sep, body = raw.partition(b"\r\n\r\n")
    assert sep, f"no complete HTTP response to {data[:200]!r}: {raw[:500]!r}"
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        body = body[: int(headers["content-length"])]
    return Answer(status, headers, body, raw)


def raw_request(method: bytes, target: bytes, *headers: bytes, body: bytes = b"",
            version: bytes = b"HTTP/1.1", host: bool = True) -> bytes:
    lines = [method + b" " + target + b" " + version]
    if host:
        lines.append(b"Host: 127.0.0.1")
    lines.append(b"Connection: close")
    lines.extend(headers)
    if body:
        lines.append(b"Content-Length: " + str(len(body)).encode())
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def auth(token: bytes = ADMIN_TOKEN, scheme: bytes = b"Bearer") -> bytes:
    return b"Authorization: " + scheme + b" " + token


def check(answer: Answer, port: int, statuses: set[int], secrets: tuple[bytes, ...] = (ADMIN_TOKEN,)) -> dict:
    """The checks every hostile request must pass; returns the JSON body."""
    shown = answer.raw[:800]
    assert answer.status in statuses, shown
    assert answer.headers.get("content-type", "").startswith("application/json"), shown
    assert b"Traceback" not in answer.raw and b'File "' not in answer.raw, shown
    for secret in secrets:
        assert secret not in answer.body, shown
    body = json.loads(answer.body)
    if answer.status >= 400:
        jsonschema.validate(body, ERROR_SCHEMA)
        assert body["status"] == answer.status
    else:
        assert "data" in body
    health = requests.get(f"http://127.0.0.1:{port}/__admin/health", timeout=READ_TIMEOUT)
    assert health.status_code == 200
    return body


# --- size limits ------------------------------------------------------------------------------------------

def test_oversized_body_on_the_post_is_413_in_the_error_schema(server):
    _, port, _ = server
    data = raw_request(b"POST", VIEW, auth(), b"Content-Type: application/json", body=b"x" * 100_000)
    body = check(send(port, data), port, {413})
    assert body["error"] == "payload_too_large"


def test_oversized_declared_length_without_the_body_is_413(server):
    _, port, _ = server
    data = raw_request(b"POST", VIEW, auth(), b"Content-Length: 1000000000")
    check(send(port, data), port, {413})


def test_an_oversized_chunked_body_is_413(server):
    _, port, _ = server
    chunk = b"x" * 16384
    body = (b"%x\r\n" % len(chunk) + chunk + b"\r\n") * 8 + b"0\r\n\r\n"  # 128 KiB, over the 64 KiB limit
    data = raw_request(b"POST", VIEW, auth(), b"Transfer-Encoding: chunked") + body
    check(send(port, data), port, {413})


# --- the path --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("target", [
    PREFIX.encode() + b"/%zz%e2",                       # bad percent-encoding
    PREFIX.encode() + b"/%ff%fe",                       # percent-encoded bytes that are not UTF-8
    PREFIX.encode() + b"/dashboard/%ff%fe/stats",
    PREFIX.encode() + b"/dashboard/abc%00def/stats",    # NUL
    PREFIX.encode() + b"/%00",
    PREFIX.encode() + b"/dashboard/" + UNKNOWN_UUID.encode() + b"%00/stats",
    PREFIX.encode() + b"/" + b"a" * 3000,               # a long id under every server's request-line limit
], ids=["bad-percent", "pct-not-utf8", "pct-not-utf8-in-id", "nul-in-id", "nul-alone", "nul-after-uuid",
        "3k-id"])
def test_hostile_paths_are_400_or_404(server, target):
    _, port, _ = server
    check(send(port, raw_request(b"GET", target, auth())), port, {400, 404})


def test_raw_non_utf8_bytes_in_the_path_are_a_json_400(server):
    # gunicorn refuses a raw non-ASCII request line itself: gunicorn_worker answers that in the Error schema
    name, port, _ = server
    check(send(port, raw_request(b"GET", PREFIX.encode() + b"/\xff\xfe", auth())), port, {400})


def test_a_10kb_id_is_a_json_400_or_414(server):
    # werkzeug passes it to the app (400: not an id); gunicorn's limit_request_line (4094) refuses it first,
    # and gunicorn_worker answers that 414 in the Error schema.
    name, port, _ = server
    expected = {414} if name == "gunicorn" else {400}
    check(send(port, raw_request(b"GET", PREFIX.encode() + b"/" + b"a" * 10_000, auth())), port, expected)


@pytest.mark.parametrize("target", [
    PREFIX.encode() + b"/../../../etc/passwd",
    PREFIX.encode() + b"/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    PREFIX.encode() + b"/dashboard/../../../../openapi.yaml/..%2f..%2f",
    b"/../" + PREFIX.encode() + b"/dashboard/most-viewed/..",
])
def test_dot_dot_segments_never_escape_the_api(server, target):
    _, port, _ = server
    answer = send(port, raw_request(b"GET", target, auth()))
    check(answer, port, {400, 404})
    assert b"root:" not in answer.body


# --- Authorization -----------------------------------------------------------------------------------------

def test_lower_case_bearer_works(server):
    _, port, _ = server
    check(send(port, raw_request(b"GET", MOST_VIEWED, auth(scheme=b"bearer"))), port, {200})


def test_repeated_authorization_headers_are_refused(server):
    _, port, _ = server
    data = raw_request(b"GET", MOST_VIEWED, auth(), auth(b"mock-user-readonly-token"))
    check(send(port, data), port, {400, 401}, secrets=(ADMIN_TOKEN, b"mock-user-readonly-token"))


@pytest.mark.parametrize("token", [
    b"mock-admin-token extra-zq7",
    b"mock-admin zq7-token",
    b"mock-admin-token\tzq7-x",
    b"sekret-zq7-123 \"quoted-zq7\" <b>zq7</b>",
])
def test_tokens_with_spaces_are_401_and_never_echoed(server, token):
    _, port, _ = server
    # Each distinctive piece of what was sent, so a partial echo is caught too (plain words like "token" are
    # in the spec's own messages).
    pieces = tuple(part for part in token.replace(b"\t", b" ").split(b" ") if b"zq7" in part or b"mock-" in part)
    body = check(send(port, raw_request(b"GET", MOST_VIEWED, auth(token))), port, {401}, secrets=pieces + (token,))
    assert body["error"] == "invalid_token"


def test_more_than_one_space_after_bearer_is_allowed(server):
    """RFC 6750 section 2.1: credentials = "Bearer" 1*SP b64token."""
    _, port, _ = server
    check(send(port, raw_request(b"GET", MOST_VIEWED, b"Authorization: Bearer   mock-admin-token")), port, {200})


# --- Prefer ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("prefer", [
    b"code=abc", b"code=99999", b"code=", b"delay=-5", b"delay=abc", b"delay=1e9",
    b"code=abc, delay=-5;;==",
])
def test_malformed_prefer_is_400(server, prefer):
    _, port, _ = server
    body = check(send(port, raw_request(b"GET", STATS, auth(), b"Prefer: " + prefer)), port, {400})
    assert body["details"][0]["name"] == "Prefer"


# --- methods and content types -------------------------------------------------------------------------

@pytest.mark.parametrize("method", [b"BREW", b"DELETE", b"PUT", b"PATCH", b"PROPFIND"])
def test_unknown_methods_get_a_json_error(server, method):
    _, port, _ = server
    answer = send(port, raw_request(method, MOST_VIEWED, auth()))
    check(answer, port, {405, 501})
    if answer.status == 405:
        assert "GET" in answer.headers["allow"]


@pytest.mark.parametrize("content_type, body", [
    (b"application/xml", b"<a>1</a>"),
    (b"multipart/form-data; boundary=x", b"--x--"),
    (b"application/x-www-form-urlencoded", b"a=%zz&b"),
    (b"application/json", b"{not json"),
    (b"text/plain; charset=bogus", b"\xff\xfe"),
])
def test_the_bodyless_post_ignores_any_body_and_content_type(server, content_type, body):
    """recordDashboardView declares no request body: whatever is sent is read and ignored, and the view counts."""
    _, port, _ = server
    answer = send(port, raw_request(b"POST", VIEW, auth(), b"Content-Type: " + content_type, body=body))
    check(answer, port, {200})


# --- protocol versions and Host ----------------------------------------------------------------------------

def test_http_1_0_without_host_is_answered(server):
    _, port, _ = server
    answer = send(port, raw_request(b"GET", MOST_VIEWED, auth(), version=b"HTTP/1.0", host=False))
    check(answer, port, {200})


def test_http_1_1_without_host_is_a_400_in_the_error_schema(server):
    """RFC 9112 section 3.2: a server MUST answer 400 to an HTTP/1.1 request without Host (http_guard.py)."""
    _, port, _ = server
    answer = send(port, raw_request(b"GET", MOST_VIEWED, auth(), host=False))
    body = check(answer, port, {400})
    assert body["details"][0]["name"] == "Host"


@pytest.mark.parametrize("host", [b"", b"a b", b"127.0.0.1, evil.example", b"evil.example/x"])
def test_http_1_1_with_an_invalid_host_is_a_400(server, host):
    _, port, _ = server
    answer = send(port, raw_request(b"GET", MOST_VIEWED, auth(), b"Host: " + host, host=False))
    check(answer, port, {400})


def test_a_host_with_a_port_or_an_ip_literal_is_fine(server):
    _, port, _ = server
    for host in (b"127.0.0.1:%d" % port, b"localhost", b"[::1]:80", b"mock.example:4010"):
        check(send(port, raw_request(b"GET", MOST_VIEWED, auth(), b"Host: " + host, host=False)), port, {200})


def test_a_hostile_query_string_gets_a_json_error(server):
    _, port, _ = server
    target = f"{PREFIX}/{UNKNOWN_OBJECT_ID}?%zz=%ff&a=%00&&=&%".encode()
    check(send(port, raw_request(b"GET", target, auth())), port, {400, 404})


# --- refused by the HTTP server itself, before Flask --------------------------------------------------------

SERVER_REFUSALS = {
    "64k-header": (raw_request(b"GET", MOST_VIEWED, auth(), b"X-Big: " + b"a" * 65536), {431}),
    "101-headers": (raw_request(b"GET", MOST_VIEWED, auth(), *[b"X-H%d: 1" % i for i in range(101)]), {431}),
    "garbage-request-line": (b"GARBAGE\r\n\r\n", {400}),
    "http-2-over-plain-text": (raw_request(b"GET", MOST_VIEWED, auth(), version=b"HTTP/2.0"), {400, 505}),
    # werkzeug passes it on and http_guard answers; gunicorn refuses the control byte itself.
    "repeated-host": (raw_request(b"GET", MOST_VIEWED, auth(), b"Host: evil.example"), {400}),
    "control-byte-in-host": (raw_request(b"GET", MOST_VIEWED, auth(), b"Host: h\x01st", host=False), {400}),
}


@pytest.mark.parametrize("name", sorted(SERVER_REFUSALS))
def test_requests_the_http_server_refuses_still_get_the_error_schema(server, name):
    server_name, port, _ = server
    data, statuses = SERVER_REFUSALS[name]
    check(send(port, data), port, statuses)
