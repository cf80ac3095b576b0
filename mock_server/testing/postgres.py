"""A throwaway PostgreSQL server for tests and benchmarks: `with running_postgres() as url: ...`.

It runs Debian's server binaries (`apt-get install postgresql`: /usr/lib/postgresql/<version>/bin) on a free
port of 127.0.0.1, with its data directory and unix socket in a temporary directory removed afterwards.
initdb and pg_ctl refuse to run as root: as root they run as the `postgres` system user the package creates
(runuser), in a directory that user owns. Authentication is `trust` (loopback only, a server that lives for
one test session), and `fsync=off`: the tests exercise the mock's transactions and concurrency, not the
durability of the machine's disk (a replica killed with -9 loses nothing either way: the server keeps
running; an OS crash would lose the throwaway server with its directory anyway).

    from mock_server.testing.postgres import running_postgres, create_database
    with running_postgres() as admin_url:          # postgresql://postgres@127.0.0.1:PORT/postgres
        url = create_database(admin_url, "test_x")  # a fresh database on that server
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

INSTALL_HINT = "PostgreSQL's server is not installed: apt-get install postgresql"
SERVICE_USER = "postgres"


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server binaries on this machine (the message says what to install)."""


def server_bin_dir() -> Path | None:
    """The newest /usr/lib/postgresql/<version>/bin holding initdb and pg_ctl, or None."""
    found = []
    for initdb in glob.glob("/usr/lib/postgresql/*/bin/initdb"):
        bin_dir = Path(initdb).parent
        version = bin_dir.parent.name
        if (bin_dir / "pg_ctl").exists() and re.fullmatch(r"\d+(\.\d+)?", version):
            found.append((tuple(int(p) for p in version.split(".")), bin_dir))
    return max(found)[1] if found else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _as_server_user(argv: list[str]) -> list[str]:
    """initdb and pg_ctl refuse root: as root, run them as the package's `postgres` user."""
    if os.geteuid() != 0:
        return argv
    runuser = shutil.which("runuser")
    if runuser is not None:
        return [runuser, "-u", SERVICE_USER, "--", *argv]
    return ["su", SERVICE_USER, "-s", "/bin/sh", "-c", " ".join(f"'{a}'" for a in argv)]


def _run(argv: list[str], timeout: float) -> None:
    done = subprocess.run(_as_server_user(argv), capture_output=True, text=True, timeout=timeout, cwd="/")
    if done.returncode != 0:
        raise RuntimeError(f"{Path(argv[0]).name} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")


@contextmanager
def running_postgres(*, max_connections: int = 300, start_timeout_s: float = 60.0) -> Iterator[str]:
    """Start a server, yield the URL of its `postgres` database (superuser `postgres`, no password), and
    stop it and delete its files afterwards. Raises PostgresUnavailable without the server binaries."""
    bin_dir = server_bin_dir()
    if bin_dir is None:
        raise PostgresUnavailable(INSTALL_HINT)
    root = Path(tempfile.mkdtemp(prefix="insights-mock-pg-"))
    data, sockets, log = root / "data", root / "sockets", root / "server.log"
    sockets.mkdir()
    if os.geteuid() == 0:
        import pwd

        owner = pwd.getpwnam(SERVICE_USER)
        for path in (root, sockets):
            os.chown(path, owner.pw_uid, owner.pw_gid)
    os.chmod(root, 0o700)
    started = False
    try:
        _run([str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
              "--locale=C", "--no-sync"], timeout=120)
        for attempt in range(5):  # another program may take the free port before the server binds it
            port = _free_port()
            options = " ".join([
                "-c listen_addresses=127.0.0.1", f"-c port={port}", f"-c unix_socket_directories={sockets}",
                f"-c max_connections={max_connections}",
                # Test speed only: a throwaway server need not survive an OS crash (see the module's docstring).
                "-c fsync=off", "-c full_page_writes=off",
            ])
            try:
                _run([str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w",
                      "-t", str(int(start_timeout_s)), "start"], timeout=start_timeout_s + 10)
            except RuntimeError:
                if attempt == 4 or "could not bind" not in _tail(log):
                    raise RuntimeError(f"PostgreSQL did not start:\n{_tail(log)}") from None
                continue
            started = True
            break
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        if started:
            try:
                _run([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"], timeout=60)
            except (RuntimeError, subprocess.TimeoutExpired):
                pass
        shutil.rmtree(root, ignore_errors=True)


def _tail(log: Path, lines: int = 30) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no server log)"


def create_database(admin_url: str, name: str) -> str:
    """CREATE DATABASE `name` (dropped first if it exists) on the server of `admin_url`; its URL."""
    import psycopg
    from psycopg import sql

    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name):
        raise ValueError(f"not a plain database name: {name!r}")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return database_url(admin_url, name)


def drop_database(admin_url: str, name: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def database_url(admin_url: str, name: str) -> str:
    """The URL of database `name` on the server of `admin_url`."""
    base, _, _ = admin_url.rpartition("/")
    return f"{base}/{name}"

