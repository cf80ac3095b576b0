#!/usr/bin/env python3
"""Serve bench/ceiling.py under gunicorn with the settings the mock's `--workers N` gets.

    .venv/bin/python bench/serve_ceiling.py --port 8001 --workers 2

The settings come from mock_server.serving.gunicorn_options(), so the ceiling cannot drift from the mock's server.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ceiling import create_app, create_flask_app  # noqa: E402

def options(host: str, port: int, workers: int) -> dict:
    from mock_server.serving import gunicorn_options  # noqa: PLC0415

    return dict(gunicorn_options(host, port, workers))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--print-options", action="store_true", help="print the gunicorn options and exit")
    p.add_argument("--flask", action="store_true", help="serve the bare Flask variant (the flask-floor)")
    args = p.parse_args(argv)
    opts = options(args.host, args.port, args.workers)
    if args.print_options:
        print(f"mock_server.serving.gunicorn_options: {opts}")
        return
    opts["proc_name"] = "insights-bench-flask-floor" if args.flask else "insights-bench-ceiling"
    make_app = create_flask_app if args.flask else create_app

    from gunicorn.app.base import BaseApplication  # noqa: PLC0415

    class CeilingApplication(BaseApplication):
        def load_config(self) -> None:
            for key, value in opts.items():
                if key in self.cfg.settings:
                    self.cfg.set(key, value)

        def load(self):
            return make_app()

    CeilingApplication().run()


if __name__ == "__main__":
    main()
