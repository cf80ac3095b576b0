"""What every bench script shares: servers started and stopped by process group, their memory, wrk runs
and the parsing of wrk's output. Standard library only, so that `python3 bench/run.py` works before
the virtualenv exists (it is then made by dev.py).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "bench"
LUA_SCRIPT = BENCH_DIR / "lua" / "bench.lua"
RESULTS_DIR = BENCH_DIR / "results"
VENV_BIN = ROOT / ".venv" / "bin"
API = "/api/v2/insights/kpis/audit-logs"
ADMIN_TOKEN = "mock-admin-token"  # fixtures/tokens.yaml: may call every operation
HEALTH_PATH = "/__admin/health"
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def ensure_venv() -> None:
    """Make or refresh .venv the way `dev.py serve` does: the runtime lock, which is what the bench serves with
    (a no-op when pyproject.toml and the locks did not change, and in a .venv of `dev.py test`)."""
    sys.path.insert(0, str(ROOT))
    try:
        import dev  # noqa: PLC0415 - the repo's bootstrap, importable only from the root
    finally:
        sys.path.pop(0)
    dev.ensure_venv("serve")


def venv_tool(name: str) -> str:
    path = VENV_BIN / name
    if not path.exists():
        raise SystemExit(f"{path} is missing: run `python3 dev.py test` or `python3 dev.py serve --help` once")
    return str(path)


def ensure_tool(name: str, package: str | None = None, install: bool = True) -> tuple[str | None, str]:
    """Path of the program `name`, installing Debian's `package` (default: the same name) when missing and
    allowed (root with apt-get); else (None, why)."""
    package = package or name
    found = shutil.which(name)
    if found:
        return found, ""
    if not install:
        return None, f"{name} is not installed (Debian/Ubuntu: apt-get install {package})"
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return None, (f"{name} is not installed and this is not root with apt-get: install it yourself "
                      f"(`sudo apt-get install {package}`, or `brew install {package}` on macOS) and run again")
    log(f"{name} is missing: apt-get install -y {package} ...")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for argv in (["apt-get", "install", "-y", "-qq", package],
                 ["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", package]):
        subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=600)
        found = shutil.which(name)
        if found:
            return found, ""
    return None, f"apt-get could not install {package}"


def ensure_wrk(install: bool = True) -> tuple[str | None, str]:
    """Path of wrk, installing Debian's package when missing and allowed (root with apt-get)."""
    return ensure_tool("wrk", install=install)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- HTTP ---------------------------------------------------------------------------------------

@dataclass
class Reply:
    status: int
    body: bytes
    headers: dict = field(default_factory=dict)

    def json(self):
        return json.loads(self.body)


def http(method: str, url: str, token: str | None = ADMIN_TOKEN, timeout: float = 10.0,
         headers: dict[str, str] | None = None) -> Reply:
    headers = {"Accept": "application/json", **(headers or {})}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = b"" if method == "POST" else None
    req = urllib.request.Request(url, method=method, headers=headers, data=data)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return Reply(resp.status, resp.read(), dict(resp.headers))
    except urllib.error.HTTPError as exc:
        return Reply(exc.code, exc.read(), dict(exc.headers))


# --- processes and memory ------------------------------------------------------------------------

def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # the command name may hold spaces or parentheses: the fields after the last ")" are fixed
        ppid = int(stat[stat.rindex(b")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    return children


def process_tree(root: int) -> list[int]:
    children = _children_map()
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def _status_kb(pid: int, key: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _pss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def tree_memory(root: int) -> dict:
    """RSS and PSS of a process tree now, in MB."""
    pids = process_tree(root)
    return {"tree_rss_mb": round(sum(_status_kb(p, "VmRSS:") for p in pids) / 1024, 1),
            "tree_pss_mb": round(sum(_pss_kb(p) for p in pids) / 1024, 1), "processes": len(pids)}


def _socket_inodes(port: int, state: str) -> set[str]:
    """The inodes of the TCP sockets on local `port` in `state` (a /proc/net/tcp state code, hex)."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    if fields[3] == state and int(fields[1].rsplit(":", 1)[1], 16) == port:
                        inodes.add(fields[9])
        except OSError:
            continue
    return inodes


def connection_split(root: int, port: int) -> list[int]:
    """Established connections on `port` held by each process of the tree, largest first. gunicorn's
    workers share one listening socket and a kept-alive connection stays with the worker that accepted
    it: a [32] split on two workers means one worker served everything."""
    inodes = _socket_inodes(port, "01")  # ESTABLISHED
    split = []
    for pid in process_tree(root):
        held = 0
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                try:
                    target = os.readlink(f"/proc/{pid}/fd/{fd}")
                except OSError:
                    continue
                if target.startswith("socket:[") and target[8:-1] in inodes:
                    held += 1
        except OSError:
            continue
        if held:
            split.append(held)
    return sorted(split, reverse=True)


def listening_pids(port: int) -> list[int]:
    """The processes holding a listening TCP socket on `port` (e.g. a PostgreSQL postmaster started by
    pg_ctl, which is no child of ours). Needs the right to read their /proc/<pid>/fd (root, or the owner)."""
    inodes = _socket_inodes(port, "0A")  # LISTEN
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            for fd in os.listdir(f"/proc/{entry}/fd"):
                try:
                    target = os.readlink(f"/proc/{entry}/fd/{fd}")
                except OSError:
                    continue
                if target.startswith("socket:[") and target[8:-1] in inodes:
                    found.append(int(entry))
                    break
        except OSError:
            continue
    return found


class MemorySampler(threading.Thread):
    """Samples the RSS and PSS of a process tree while it runs.

    Reports three peaks: the largest sum of RSS over the tree (pages shared by a fork are counted in
    every process: an upper bound), the largest sum of PSS (shared pages split between their users: what
    the tree really holds), and the largest VmHWM of any one process (the kernel's own high-water mark,
    which sees spikes between two samples)."""

    def __init__(self, root_pid: int, interval: float = 0.1):
        super().__init__(daemon=True)
        self.root_pid = root_pid
        self.interval = interval
        self.peak_rss_kb = 0
        self.peak_pss_kb = 0
        self.peak_hwm_kb = 0
        self.peak_processes = 0
        self._halt = threading.Event()

    def sample(self) -> None:
        pids = process_tree(self.root_pid)
        rss = sum(_status_kb(p, "VmRSS:") for p in pids)
        pss = sum(_pss_kb(p) for p in pids)
        hwm = max((_status_kb(p, "VmHWM:") for p in pids), default=0)
        self.peak_rss_kb = max(self.peak_rss_kb, rss)
        self.peak_pss_kb = max(self.peak_pss_kb, pss)
        self.peak_hwm_kb = max(self.peak_hwm_kb, hwm)
        self.peak_processes = max(self.peak_processes, len(pids))

    def run(self) -> None:
        while not self._halt.is_set():
            self.sample()
            self._halt.wait(self.interval)

    def stop(self) -> dict:
        self._halt.set()
        self.join(5)
        self.sample()
        return {
            "peak_tree_rss_mb": round(self.peak_rss_kb / 1024, 1),
            "peak_tree_pss_mb": round(self.peak_pss_kb / 1024, 1),
            "peak_process_hwm_mb": round(self.peak_hwm_kb / 1024, 1),
            "processes": self.peak_processes,
        }


class Server:
    """A server process group on 127.0.0.1: started, waited for, measured and ended by its own pgid."""

    def __init__(self, name: str, argv: list[str], port: int, health_path: str = HEALTH_PATH,
                 env: dict | None = None, cwd: Path = ROOT, log_path: Path | None = None,
                 ready_status: set[int] | None = None):
        self.name = name
        self.argv = argv
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.health_path = health_path
        self.env = env
        self.cwd = cwd
        self.log_path = log_path
        # Prism has no health route: any HTTP answer on an API path means it listens
        self.ready_status = ready_status or {200}
        self.proc: subprocess.Popen | None = None
        self.also: list[int] = []  # roots of other process trees whose CPU is this server's (bench/run.py)
        self.sampler: MemorySampler | None = None
        self.startup_s: float | None = None
        self._log = None

    def start(self, timeout: float = 120.0) -> float:
        self._log = open(self.log_path, "wb") if self.log_path else subprocess.DEVNULL
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(self.argv, cwd=self.cwd, env=self.env, stdin=subprocess.DEVNULL,
                                     stdout=self._log, stderr=subprocess.STDOUT,
                                     # A process group of its own (one killpg stops master and workers), in
                                     # our session: a new session would also be a new scheduler autogroup on
                                     # Linux, and CPU would then be shared between the servers' group and
                                     # wrk's rather than between threads, which cut the ceiling's req/s by a
                                     # quarter to a third and the mock's by less (see bench/README.md).
                                     process_group=0)
        self.sampler = MemorySampler(self.proc.pid)
        self.sampler.start()
        deadline = t0 + timeout
        while True:
            if self.proc.poll() is not None:
                self.stop()
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode} before answering; "
                                   f"see {self.log_path}")
            try:
                if http("GET", self.base + self.health_path, timeout=1).status in self.ready_status:
                    break
            except (OSError, urllib.error.URLError):
                pass
            if time.perf_counter() > deadline:
                self.stop()
                raise RuntimeError(f"{self.name} did not answer within {timeout:.0f} s; see {self.log_path}")
            time.sleep(0.01)
        self.startup_s = time.perf_counter() - t0
        return self.startup_s

    def memory(self) -> dict:
        return self.sampler.stop() if self.sampler else {}

    def stop(self) -> dict:
        try:
            return self.memory()
        finally:  # whatever went wrong above, the servers go
            self.sampler = None
            self._end_group()
            if self._log not in (None, subprocess.DEVNULL):
                self._log.close()
                self._log = None

    def _end_group(self) -> None:
        if not self.proc:
            return
        pgid = self.proc.pid  # process_group=0: the group is ours alone
        if self.proc.poll() is None:
            for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
                try:
                    os.killpg(pgid, sig)
                except ProcessLookupError:
                    break
                try:
                    self.proc.wait(wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        # the leader may be gone while a child lingers (npx -> sh -> node, gunicorn workers)
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def time_startups(label: str, make_argv, runs: int, work: Path, timeout: float = 120.0) -> dict:
    """Start a server `runs` times, alone, each time from the process start to the first 200 of its health
    route; make_argv(port, i) gives its command. Median, max and every run, and the last run's memory."""
    import statistics  # noqa: PLC0415

    times, memory, argv = [], {}, []
    for i in range(runs):
        port = free_port()
        argv = make_argv(port, i)
        server = Server(label, argv, port, log_path=work / f"startup-{label}-{i}.log")
        with server:
            times.append(server.start(timeout=timeout))
            memory = server.memory()
    return {"argv": argv, "runs_s": [round(t, 3) for t in times], "median_s": round(statistics.median(times), 3),
            "max_s": round(max(times), 3), "memory": memory}


# --- wrk -----------------------------------------------------------------------------------------

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def _to_ms(number: str, unit: str) -> float:
    return float(number) * _UNITS[unit]


def parse_wrk_output(text: str) -> dict:
    """Figures of one wrk run: from the BENCH_JSON line of bench.lua when present, else from wrk's text.

    Returns requests, duration_s, rps, p50_ms/p75_ms/p90_ms/p99_ms, non2xx (wrk counts status >= 400),
    socket errors (connect/read/write/timeout), errors (their sum) and, with BENCH_COUNT, the counts."""
    out: dict = {}
    text_figures = _parse_wrk_text(text)
    marker = re.search(r"^BENCH_JSON (\{.*\})\s*$", text, re.M)
    if marker:
        raw = json.loads(marker.group(1))
        duration_s = raw["duration_us"] / 1e6
        out.update(
            source="lua",
            requests=raw["requests"],
            duration_s=round(duration_s, 3),
            rps=round(raw["requests"] / duration_s, 1) if duration_s else 0.0,
            bytes=raw["bytes"],
            non2xx=raw["err_status"],
            socket_errors={k: raw[f"err_{k}"] for k in ("connect", "read", "write", "timeout")},
            mean_ms=round(float(raw["lat_mean_us"]) / 1e3, 3),
            max_ms=round(raw["lat_max_us"] / 1e3, 3),
        )
        for p in ("p50", "p75", "p90", "p99", "p999"):
            out[f"{p}_ms"] = round(raw[f"{p}_us"] / 1e3, 3)
        for key in ("sent", "answered_2xx", "answered_other", "with_view_count", "duplicate_view_counts",
                    "min_view_count", "max_view_count"):
            if key in raw:
                out[key] = raw[key]
    elif text_figures:
        out.update(text_figures, source="text")
    else:
        raise ValueError("not wrk output: " + text[:200])
    out["errors"] = out["non2xx"] + sum(out["socket_errors"].values())
    return out


def _parse_wrk_text(text: str) -> dict:
    figures: dict = {}
    m = re.search(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h),", text, re.M)
    if m:
        figures["requests"] = int(m.group(1))
        figures["duration_s"] = round(_to_ms(m.group(2), m.group(3)) / 1e3, 3)
    m = re.search(r"^Requests/sec:\s*([\d.]+)", text, re.M)
    if not m:
        return {}
    figures["rps"] = float(m.group(1))
    for pct, number, unit in re.findall(r"^\s*(50|75|90|99)%\s+([\d.]+)(us|ms|s|m|h)\s*$", text, re.M):
        figures[f"p{pct}_ms"] = round(_to_ms(number, unit), 3)
    m = re.search(r"^\s*Latency\s+([\d.]+)(us|ms|s|m|h)\s+[\d.]+\w+\s+([\d.]+)(us|ms|s|m|h)", text, re.M)
    if m:
        figures["mean_ms"] = round(_to_ms(m.group(1), m.group(2)), 3)
        figures["max_ms"] = round(_to_ms(m.group(3), m.group(4)), 3)
    m = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", text)
    figures["non2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    figures["socket_errors"] = dict(zip(("connect", "read", "write", "timeout"),
                                        (int(g) for g in m.groups()) if m else (0, 0, 0, 0)))
    return figures


@dataclass
class WrkSettings:
    duration: int = 10  # wrk takes whole seconds only
    warmup: int = 2
    connections: int = 32
    threads: int = 2
    timeout: float = 5.0


def start_wrk(wrk: str, url: str, settings: WrkSettings, *, method: str = "GET", token: str = ADMIN_TOKEN,
              count: bool = False, duration: float | None = None,
              headers: dict[str, str] | None = None) -> subprocess.Popen:
    """wrk through bench/lua/bench.lua, started and left running (text stdout and stderr piped); its
    output is read by parse_wrk_output. For a load that goes on while something else is measured.
    `headers` are sent with every request besides the Authorization header (e.g. an Origin)."""
    duration = settings.duration if duration is None else duration
    if duration < 1 or duration != int(duration):
        raise ValueError(f"wrk runs whole seconds, not {duration!r}")
    argv = [wrk, f"-t{settings.threads}", f"-c{settings.connections}", f"-d{int(duration)}s",
            f"--timeout={settings.timeout:g}s", "--latency", "-s", str(LUA_SCRIPT),
            "-H", f"Authorization: Bearer {token}",
            *(arg for name, value in (headers or {}).items() for arg in ("-H", f"{name}: {value}")), url]
    env = dict(os.environ, BENCH_METHOD=method, BENCH_COUNT="1" if count else "0")
    return subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def run_wrk(wrk: str, url: str, settings: WrkSettings, *, method: str = "GET", token: str = ADMIN_TOKEN,
            count: bool = False, duration: float | None = None, midway=None,
            headers: dict[str, str] | None = None) -> dict:
    """One wrk run through bench/lua/bench.lua; `midway()`, if given, is called halfway through the run
    and its value returned under "midway" (bench/run.py reads the connection split there)."""
    duration = settings.duration if duration is None else duration
    proc = start_wrk(wrk, url, settings, method=method, token=token, count=count, duration=duration,
                     headers=headers)
    midway_value = None
    try:
        if midway is not None:
            time.sleep(duration / 2)
            midway_value = midway()
        stdout, stderr = proc.communicate(timeout=duration + settings.timeout + 60)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {stderr.strip() or stdout.strip()}")
    result = parse_wrk_output(stdout)
    result["raw"] = stdout
    if midway is not None:
        result["midway"] = midway_value
    return result


# --- presentation --------------------------------------------------------------------------------

def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b in (None, 0):
        return None
    return round(a / b, 3)


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("met" if ok else "NOT MET")


def fmt(value, spec: str = ".2f", missing: str = "-") -> str:
    if value is None:
        return missing
    if isinstance(value, str):
        return value
    return format(value, spec)


def table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "  ".join(str(c).rjust(w) if i else str(c).ljust(w)  # noqa: E731
                               for i, (c, w) in enumerate(zip(r, widths)))
    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def write_json(name: str, payload: dict, out_dir: Path = RESULTS_DIR) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    path = out_dir / f"{name}-{stamp}.json"
    path.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n")
    return path


def machine_info() -> dict:
    info = {"cores": cores(), "python": sys.version.split()[0], "platform": sys.platform}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
        with open("/proc/loadavg") as f:
            info["loadavg_at_start"] = f.read().split()[:3]
    except OSError:
        pass
    wrk = shutil.which("wrk")
    if wrk:
        v = subprocess.run([wrk, "--version"], capture_output=True, text=True)
        info["wrk"] = (v.stdout or v.stderr).splitlines()[0] if (v.stdout or v.stderr) else "?"
    return info
