"""Operator endpoints outside the API prefix: POST /__admin/reset, GET /__admin/health.

On a loopback HOST they are open (a developer's own machine), unless ADMIN_TOKEN is set. On any other
HOST they need `Authorization: Bearer <ADMIN_TOKEN>`, and without an ADMIN_TOKEN they do not exist (404):
a mock reachable from a network must not let anyone wipe its state.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import time

from flask import Blueprint, Response, current_app, request

from .api import json_response
from .errors import NotFound, Unauthorized
from .timestamps import iso


def is_loopback(host: str) -> bool:
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def blueprint() -> Blueprint:
    bp = Blueprint("admin", __name__, url_prefix="/__admin")
    bp.before_request(_guard)
    bp.add_url_rule("/reset", view_func=reset, methods=["POST"])
    bp.add_url_rule("/health", view_func=health, methods=["GET"])
    return bp


def _state():
    return current_app.extensions["insights_mock"]


def _guard() -> None:
    if request.method == "OPTIONS":
        return
    config = _state().config
    token = config["ADMIN_TOKEN"]
    if token is None:
        if is_loopback(config["HOST"]):
            return
        raise NotFound("Not Found - No operation at this path")
    scheme, _, given = (request.headers.get("Authorization") or "").strip().partition(" ")
    expected = hashlib.sha256(token.encode()).digest()
    actual = hashlib.sha256(given.strip().encode()).digest()
    if scheme.lower() != "bearer" or not hmac.compare_digest(expected, actual):
        raise Unauthorized("Authentication required - The admin endpoints need the admin token",
                           headers={"WWW-Authenticate": 'Bearer realm="insights-admin"'})


def _summary(state) -> dict:
    return {
        "seed": state.config["SEED"],
        "anchor": iso(state.anchor),
        "now": iso(state.clock.now()),
        "counts": state.store.counts(),
    }


def reset() -> Response:
    state = _state()
    started = time.perf_counter()
    state.reset()
    return json_response({"status": "reset", **_summary(state),
                          "duration_ms": round((time.perf_counter() - started) * 1000, 1)})


def health() -> Response:
    state = _state()
    return json_response({
        "status": "ok",
        **_summary(state),
        "operations": len(state.spec.operations),
        "validateResponses": state.response_validator is not None,
        "latency": state.config["LATENCY"],
        "errorRate": state.config["ERROR_RATE"],
    })
