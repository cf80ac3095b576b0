"""The bench's reference servers: a bare WSGI app (the ceiling) and a bare Flask app (the flask-floor),
each answering every request with a fixed JSON body.

Served by the same server with the same settings as the mock (bench/run.py starts them all), the ceiling
measures what the server, the loopback and the load generator cost on this machine: `mock rps / ceiling
rps` is the share of the machine that the mock's own work leaves. To compare like with like, the body of each path is the
body the mock answered on it (same size), read from the JSON file named by BENCH_CEILING_BODIES:
{"<METHOD> <path and query>": "<body text>", ...}. Unknown requests get the smallest body there.

    gunicorn --pythonpath bench 'ceiling:create_app()'

`create_flask_app` answers the same bodies through a bare Flask app: one route (`/<path:path>`, GET and
POST), no hooks, no extensions, the body looked up by method, path and query. Served the same way, it is
the floor any Flask-based server stands on and what the issue's targets are ratios of (`flask-floor` in
bench/run.py and bench/fixed_rate.py).
"""

from __future__ import annotations

import json
import os

DEFAULT_BODY = b'{"data":[],"message":"ok"}'


def load_bodies(path: str | None) -> dict[str, bytes]:
    if not path:
        return {}
    with open(path, encoding="utf-8") as f:
        return {key: body.encode("utf-8") for key, body in json.load(f).items()}


def create_app(bodies: dict[str, bytes] | None = None):
    if bodies is None:
        bodies = load_bodies(os.environ.get("BENCH_CEILING_BODIES"))
    fallback = min(bodies.values(), key=len) if bodies else DEFAULT_BODY

    def app(environ, start_response):
        key = environ["REQUEST_METHOD"] + " " + environ.get("PATH_INFO", "")
        query = environ.get("QUERY_STRING")
        if query:
            key += "?" + query
        body = bodies.get(key, fallback)
        start_response("200 OK", [("Content-Type", "application/json"),
                                  ("Content-Length", str(len(body)))])
        return [body]

    return app


def create_flask_app(bodies: dict[str, bytes] | None = None):
    from flask import Flask, Response, request  # noqa: PLC0415 - only this variant needs Flask

    if bodies is None:
        bodies = load_bodies(os.environ.get("BENCH_CEILING_BODIES"))
    fallback = min(bodies.values(), key=len) if bodies else DEFAULT_BODY
    app = Flask("flask_floor", static_folder=None)  # no /static/<filename> rule: one route only

    @app.route("/<path:path>", methods=["GET", "POST"])  # the one route: every path the bench asks for
    def answer(path: str) -> Response:
        key = request.method + " " + request.path
        if request.query_string:
            key += "?" + request.query_string.decode("latin-1")
        return Response(bodies.get(key, fallback), mimetype="application/json")

    return app
