"""Serving the app: werkzeug (one process, threaded) or gunicorn (N worker processes on one --db file).

Neither server announces its version: werkzeug's handler says "insights-mock", gunicorn's Server header
is its bare name. Request logging is ours (access_log), so both servers' own access logs stay off.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import socket
import sys
import threading
from collections.abc import Callable
from typing import Any

from werkzeug.serving import WSGIRequestHandler, make_server

from .app import create_app
from .config import ConfigError, load_config
from .store import StoreError
from .errors import refusal_body


class _Handler(WSGIRequestHandler):
    def version_string(self) -> str:
        return "insights-mock"

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass  # one structured line per request comes from access_log instead

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Requests the HTTP server refuses before Flask sees them (a header line too long, a request line it
        cannot parse, HTTP/2 over plain text) get the spec's Error body too, instead of the standard library's
        HTML page; and a status line even when the request line was too broken to tell an HTTP version."""
        phrase = self.responses.get(code, ("Error",))[0]
        if self.request_version not in ("HTTP/1.0", "HTTP/1.1"):
            self.request_version = "HTTP/1.1"
        self.close_connection = True
        body = refusal_body(code, phrase)
        self.send_response(code, phrase)  # not `message`: it may quote the request's own bytes
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD" and code >= 200 and code not in (204, 304):
            self.wfile.write(body)


def bind_address(host: str, port: int) -> str:
    return f"[{host.strip('[]')}]:{port}" if ":" in host.strip("[]") else f"{host}:{port}"


Announce = Callable[[int], None]  # called with the port bound, once it answers and the data is loaded


def run_werkzeug(overrides: dict[str, Any], host: str, port: int, announce: Announce | None = None) -> None:
    """Build the app (it loads the data), bind (port 0: a free port), announce the bound port, serve."""
    if load_config(overrides)["RELOAD"]:
        from .reload import ReloadingApp

        app = ReloadingApp(overrides)
    else:
        app = create_app(overrides)
    # werkzeug logs its start-up banner at INFO; keep its warnings and errors, drop the chatter.
    werkzeug_logger = logging.getLogger("werkzeug")
    werkzeug_logger.setLevel(logging.WARNING)
    if not werkzeug_logger.handlers:
        werkzeug_logger.addHandler(logging.StreamHandler())
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)
    # Bound here rather than by werkzeug, which would print its own words and exit 1 on a port in use.
    with listen(host, port) as listener:
        server = make_server(host.strip("[]"), port, app, threaded=True, request_handler=_Handler,
                             fd=listener.fileno())  # werkzeug serves a duplicate of it
    try:
        if announce is not None:
            announce(server.port)  # the port bound (werkzeug records it from the socket)
        server.serve_forever()
    finally:
        server.server_close()


LISTEN_BACKLOG = 128  # werkzeug's own


def listen(host: str, port: int) -> socket.socket:
    """A socket listening on host:port (port 0: a free port), as werkzeug would bind it; a ConfigError
    saying why if it cannot."""
    address = host.strip("[]")
    sock = socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as werkzeug: TIME_WAIT is no conflict
        sock.bind((address, port))
        sock.listen(LISTEN_BACKLOG)
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {bind_address(host, port)}: {exc.strerror}") from None
    return sock


def _interrupt(signum, frame) -> None:
    """SIGTERM (docker stop, a CI job's end) stops the server as Ctrl-C does: it unwinds, so the CLI cleans
    up and the access lines still gathered are written (logging's shutdown) instead of dying mid-interval."""
    raise KeyboardInterrupt


def gunicorn_options(host: str, port: int, workers: int) -> dict[str, Any]:
    """The server settings of `--workers N`; bench/serve_ceiling.py serves its ceiling app with the same."""
    return {
        "bind": bind_address(host, port),
        "workers": workers,
        # gunicorn's gthread worker, answering the requests gunicorn itself refuses in the Error schema
        "worker_class": "mock_server.gunicorn_worker.JsonRefusalsWorker",
        "threads": 4,  # a Prefer delay must not stall every other request of a worker
        # Each worker listens on its own SO_REUSEPORT socket and the kernel spreads new connections over
        # them. With one shared socket, the worker that wakes first accepts a whole burst and keeps those
        # connections alive: 32 connections on one of two workers served a third of what 16 + 16 did.
        "reuse_port": True,
        "accesslog": None,
        "errorlog": "-",
        "loglevel": "warning",
        "preload_app": False,
        "timeout": 60,
        "graceful_timeout": 5,
        "keepalive": 5,
        "control_socket_disable": True,  # gunicorn 27 would otherwise share ~/.gunicorn/gunicorn.ctl
        "post_fork": _tune_worker,
    }


# How long a thread may keep the GIL while another waits for it (Python's default: 5 ms).
GIL_SWITCH_INTERVAL_S = 0.0005


def _tune_worker(server, worker) -> None:
    """A worker's threads share one GIL. A thread coming back from a socket or SQLite call waits for it
    until the holder's switch interval runs out: with the default 5 ms, a view POST (four SQLite calls
    while holding SQLite's write lock) or a finished answer could wait 5 ms per call behind a request being
    parsed. A shorter interval hands the GIL back sooner, at a small cost in switches."""
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)


def claim_port(host: str, port: int) -> int:
    """Check, before the workers bind with SO_REUSEPORT, that nothing listens on the port (SO_REUSEPORT would
    otherwise let a second server share it, each answering part of the requests); port 0 becomes a free
    port, which every worker must then bind, not one each."""
    address = host.strip("[]")
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn: TIME_WAIT is no conflict
        try:
            probe.bind((address, port))
        except OSError as exc:
            raise ConfigError(f"cannot listen on {bind_address(host, port)}: {exc.strerror}") from None
        return probe.getsockname()[1]


def reserve_port(host: str) -> socket.socket:
    """A free port for `--workers N --port 0`, held for as long as the master runs: a socket bound with
    SO_REUSEPORT (as gunicorn's per-worker listeners are) but not listening, so the kernel hands it no
    connection while no other program can take the port between this choice and the workers' bind."""
    address = host.strip("[]")
    holder = socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET, socket.SOCK_STREAM)
    try:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        holder.bind((address, 0))
    except OSError as exc:
        holder.close()
        raise ConfigError(f"cannot listen on {bind_address(host, 0)}: {exc.strerror}") from None
    return holder


def run_gunicorn(overrides: dict[str, Any], host: str, port: int, workers: int,
                 announce: Announce | None = None) -> None:
    """Workers build their own app after the fork (no preload: SQLite connections must not cross a fork).
    The data is loaded once before that, in a child process (prime_database), so workers start on a ready
    database and fork from a master that never held the dataset.

    Each worker binds its own listener (SO_REUSEPORT), so the master has none: the first worker whose
    listener is bound and whose app is built (post_worker_init) announces the port it bound, once."""
    from gunicorn.app.base import BaseApplication

    prime_database(overrides)  # also fails fast, before forking workers, on a bad configuration
    holder = reserve_port(host) if port == 0 else None
    port = holder.getsockname()[1] if holder is not None else claim_port(host, port)
    announced = multiprocessing.get_context("fork").Value("b", 0)  # shared by the workers forked after

    def post_worker_init(worker) -> None:
        with announced.get_lock():
            if announced.value:
                return
            announced.value = 1
        if announce is not None:
            announce(worker.sockets[0].getsockname()[1])

    options = dict(gunicorn_options(host, port, workers), proc_name="insights-mock",
                   post_worker_init=post_worker_init)

    class MockApplication(BaseApplication):
        def load_config(self) -> None:
            for key, value in options.items():
                if key in self.cfg.settings:
                    self.cfg.set(key, value)

        def load(self):
            return create_app(overrides)

    try:
        MockApplication().run()
    finally:
        if holder is not None:
            holder.close()


def prime_database(overrides: dict[str, Any]) -> None:
    """Build the app once in a forked child: it creates and loads the --db file and checks the settings.
    Generating a large dataset takes memory the allocator does not always give back; in a child it goes
    back with the child, instead of staying in the master and, through fork, in every worker.
    ConfigError and StoreError of the child are raised here, with their message."""
    ctx = multiprocessing.get_context("fork")
    receiver, sender = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_prime_in_child, args=(overrides, sender), name="insights-mock-loader")
    child.start()
    sender.close()
    try:
        failure = receiver.recv()
    except EOFError:
        failure = ("RuntimeError", "the process loading the data ended without a word")
    finally:
        receiver.close()
        child.join()
    if failure is not None:
        kind, message = failure
        raise {"ConfigError": ConfigError, "StoreError": StoreError}.get(kind, RuntimeError)(message)


def _prime_in_child(overrides: dict[str, Any], sender) -> None:
    try:
        app = create_app(overrides)
        app.extensions["insights_mock"].close()
    except (ConfigError, StoreError) as exc:
        sender.send((type(exc).__name__, str(exc)))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which raises it
        sender.send(("RuntimeError", f"loading the data failed: {type(exc).__name__}: {exc}"))
    else:
        sender.send(None)
    finally:
        sender.close()
