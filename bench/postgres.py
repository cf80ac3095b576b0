"""A throwaway PostgreSQL server for the bench: `with running_postgres() as url: ...`.

    from postgres import running_postgres, unavailable
    why = unavailable()              # None, or why no server can be started here
    with running_postgres() as url:  # postgresql://postgres@127.0.0.1:<port>/<database>
        ...

BENCH-LOCAL STAND-IN, TO BE SWAPPED: the project's shared starter is being written on another branch
(`mock_server/testing/postgres.py`: `running_postgres()` yielding the URL of a fresh server's `postgres`
database). `running_postgres()` here uses it when it can be imported (the mock installed with it) and no
extra `settings` are asked for, else the stand-in below, which starts the server the same way and with
the same settings. Once the shared module has landed everywhere, replace this file's body with
`from mock_server.testing.postgres import running_postgres` plus `unavailable()` (bench/run.py and
bench/fixed_rate.py use only those two, through run.py).

The stand-in: initdb (trust authentication, local only) in a new temporary directory, the server started
with pg_ctl on 127.0.0.1 and a free port, its Unix socket in that directory too, one database created; on
exit `pg_ctl stop -m fast` (the postmaster by the pid in its own pid file) and the directory removed. It uses
Debian's /usr/lib/postgresql/<version>/bin (the newest there), else initdb/pg_ctl on PATH. When run as root
the server runs as the `postgres` user (initdb refuses root). Settings as the shared starter's:
max_connections=300, fsync=off and full_page_writes=off (a throwaway server need not survive an OS crash;
what is measured is the mock's transactions, not the disk's flushes), plus any `settings` given
(`-c name=value`, e.g. fsync=on to measure with flushes). Standard library only.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

DATABASE = "insights_bench"


def bin_dir() -> Path | None:
    """The directory holding initdb and pg_ctl: Debian's newest version, else PATH."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: [int(x) if x.isdigit() else 0 for x in Path(p).parent.parent.name.split(".")])
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb and shutil.which("pg_ctl") else None


def _run_as() -> str | None:
    """The user the server runs as: `postgres` when we are root, else ourselves (None)."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return ""  # root without a postgres user: cannot run initdb
    return "postgres"


def unavailable() -> str | None:
    """None when running_postgres() can start a server here, else why not (for a note, not an error)."""
    if bin_dir() is None:
        return "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb, no initdb on PATH)"
    if _run_as() == "":
        return "running as root and there is no `postgres` user to run initdb as"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg(argv: list[str], user: str | None, timeout: float = 120) -> subprocess.CompletedProcess:
    proc = subprocess.run(argv, user=user, capture_output=True, text=True, timeout=timeout, check=False,
                          env=dict(os.environ, LC_ALL="C.UTF-8", LANG="C.UTF-8"), cwd="/")
    if proc.returncode != 0:
        raise RuntimeError(f"{Path(argv[0]).name} failed ({proc.returncode}): "
                           f"{(proc.stderr or proc.stdout).strip()[-800:]}")
    return proc


# the stand-in's server settings: those of mock_server/testing/postgres.py
DEFAULT_SETTINGS = {"max_connections": "300", "fsync": "off", "full_page_writes": "off"}


def shared_starter():
    """mock_server.testing.postgres.running_postgres when the installed mock has it, else None."""
    try:
        from mock_server.testing.postgres import running_postgres as shared
    except ImportError:
        return None
    return shared


def running_postgres(settings: dict[str, str] | None = None):
    """A fresh PostgreSQL server for the duration of the block; yields the URL of an empty database.
    The shared starter when there is one and no extra settings are asked for, else the stand-in."""
    shared = shared_starter()
    if shared is not None and not settings:
        return shared()
    return standin_postgres(settings)


@contextmanager
def standin_postgres(settings: dict[str, str] | None = None) -> Iterator[str]:
    """The bench's own starter (see the module's docstring)."""
    why = unavailable()
    if why:
        raise RuntimeError(why)
    bindir, user = bin_dir(), _run_as()
    work = Path(tempfile.mkdtemp(prefix="insights-bench-pg-"))
    data, sock, port = work / "data", work / "sock", _free_port()
    sock.mkdir()
    if user:
        entry = pwd.getpwnam(user)
        for path in (work, sock):
            os.chown(path, entry.pw_uid, entry.pw_gid)
    started = False
    try:
        _pg([str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
             "--locale=C", "--no-sync", "--no-instructions"], user)
        options = f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={sock}"
        for name, value in {**DEFAULT_SETTINGS, **(settings or {})}.items():
            options += f" -c {name}={value}"
        _pg([str(bindir / "pg_ctl"), "-D", str(data), "-l", str(work / "server.log"), "-o", options,
             "-w", "-t", "60", "start"], user)
        started = True
        # createdb over TCP as the `postgres` role (trust): works whichever OS user we are
        _pg([str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", DATABASE], None)
        yield f"postgresql://postgres@127.0.0.1:{port}/{DATABASE}"
    finally:
        if started:
            try:
                _pg([str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "-t", "60", "stop"], user)
            except (RuntimeError, subprocess.TimeoutExpired):
                pass
        shutil.rmtree(work, ignore_errors=True)
