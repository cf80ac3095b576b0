#!/usr/bin/env python3
"""Serve bench/ceiling.py under gunicorn with the settings the mock's `--workers N` gets.

    .venv/bin/python bench/serve_ceiling.py --port 8001 --workers 2

The settings come from mock_server.serving.gunicorn_options() when the mock has it, so that the ceiling
can never drift from the mock's server; until then from MIRRORED_OPTIONS, a copy of the options in
mock_server/serving.py's run_gunicorn (checked by bench/test_bench_smoke.py against that source).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ceiling import create_app  # noqa: E402

# Copy of mock_server/serving.py run_gunicorn's options, but bind and workers (set per run).
MIRRORED_OPTIONS = {
    "worker_class": "gthread",
    "threads": 4,
    "accesslog": None,
    "errorlog": "-",
    "loglevel": "warning",
    "preload_app": False,
    "timeout": 60,
    "graceful_timeout": 5,
    "keepalive": 5,
    "control_socket_disable": True,
}


def options(host: str, port: int, workers: int) -> tuple[dict, str]:
    try:
        from mock_server.serving import gunicorn_options  # noqa: PLC0415
    except ImportError:
        opts = dict(MIRRORED_OPTIONS, bind=f"{host}:{port}", workers=workers)
        return opts, "bench/serve_ceiling.py MIRRORED_OPTIONS"
    opts = dict(gunicorn_options(host, port, workers))
    return opts, "mock_server.serving.gunicorn_options"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--print-options", action="store_true", help="print the gunicorn options and exit")
    args = p.parse_args(argv)
    opts, source = options(args.host, args.port, args.workers)
    opts["proc_name"] = "insights-bench-ceiling"
    if args.print_options:
        print(f"{source}: {opts}")
        return

    from gunicorn.app.base import BaseApplication  # noqa: PLC0415

    class CeilingApplication(BaseApplication):
        def load_config(self) -> None:
            for key, value in opts.items():
                if key in self.cfg.settings:
                    self.cfg.set(key, value)

        def load(self):
            return create_app()

    CeilingApplication().run()


if __name__ == "__main__":
    main()
