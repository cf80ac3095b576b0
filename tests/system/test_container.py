"""The container image, built and run for real with podman: the Dockerfile builds, the image runs as a
non-root user with no test tools in it, a container bound to 0.0.0.0 answers health without a token and
locks the operator API with a 401 naming MOCK_ADMIN_TOKEN (and unlocks it when the variable is set), stops
at once on SIGTERM, comes up from compose.yaml with podman-compose, serves two replicas on one PostgreSQL database
(compose.yaml's `postgres` profile), and
passes the contract suite over HTTP.

No image registry is reachable from these machines, so the Dockerfile's FROM (python:3.11-slim) is replaced
with `podman build --from` by a local Debian bookworm image with the same Python 3.11
(scripts/container-base.sh, which needs mmdebstrap). What is cached between runs, so only the first run on a
machine pays for it (measured on 2 shared cores: 70 s for the base and 45 s for the image's first build, 3 min
for this module from nothing; warm, a build takes 3 s unchanged or 17 s after a code change, the module 1.5 min):
  - the base image in podman's store (localhost/insights-mock-base:bookworm), and its root file system as a
    tarball in ~/.cache/insights-mock/ ($INSIGHTS_MOCK_CONTAINER_CACHE), which refills a wiped store;
  - the image's dependency layer in podman's store: a later build while requirements/container.txt is
    unchanged only reinstalls the package (a few seconds).
Without podman or mmdebstrap these tests are skipped with a note, unless INSIGHTS_MOCK_REQUIRE_PODMAN=1 (CI's
.ci/run sets it, and installs both), where that is a failure. The timings of the run are written to
reports/container.json.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from mock_helpers import ADMIN, NOW, ROOT, bearer, free_port, url

pytestmark = [pytest.mark.live, pytest.mark.slow]

REQUIRE = "INSIGHTS_MOCK_REQUIRE_PODMAN"
IMAGE = "localhost/insights-mock:test"
# This machine's kind runs Debian's podman with runc, which cannot raise the container's rlimits beyond the
# sandbox's own: fixed, modest limits are given instead (the mock needs far fewer descriptors).
RUN_FLAGS = ["--runtime=runc", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]
CONTRACT_TOKENS = {"CONTRACT_TOKEN": "mock-admin-token", "CONTRACT_READONLY_TOKEN": "mock-user-readonly-token",
                   "CONTRACT_READONLY_ROLE": "User", "CONTRACT_NO_ROLE_TOKEN": "mock-user-token",
                   "CONTRACT_NO_ROLE_ROLE": "User", "CONTRACT_NO_SCOPE_TOKEN": "mock-noscope-token",
                   "CONTRACT_EXPIRED_TOKEN": "mock-expired-token"}
TIMINGS: dict[str, float] = {}


def _unavailable() -> str | None:
    for tool, package in (("podman", "podman"), ("runc", "runc"), ("mmdebstrap", "mmdebstrap")):
        if shutil.which(tool) is None:
            return f"{tool} is missing (apt-get install {package})"
    info = subprocess.run(["podman", "--runtime=runc", "info"], capture_output=True, text=True)
    if info.returncode != 0:
        return f"podman cannot run here: {info.stderr.strip()[-300:]}"
    return None


def _podman(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)} exited {done.returncode}:\n{done.stdout[-3000:]}\n"
                             f"{done.stderr[-3000:]}")
    return done


def _ca_bundle() -> str | None:
    """The CA bundle pip trusts here, handed to the build as a secret: a TLS-inspecting proxy between this
    machine and PyPI is trusted by it, not by the base image's bundle."""
    for name in ("PIP_CERT", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"):
        if os.environ.get(name) and Path(os.environ[name]).is_file():
            return os.environ[name]
    default = Path("/etc/ssl/certs/ca-certificates.crt")
    return str(default) if default.is_file() else None


@pytest.fixture(scope="module")
def image() -> str:
    problem = _unavailable()
    if problem is not None:
        if os.environ.get(REQUIRE) == "1":
            pytest.fail(f"{problem} ({REQUIRE}=1: the container tests must run here)")
        pytest.skip(f"{problem}: the container image is not built or tested on this machine")
    started = time.monotonic()
    base = subprocess.run(["bash", str(ROOT / "scripts" / "container-base.sh")], capture_output=True, text=True,
                          timeout=900)
    assert base.returncode == 0, base.stderr[-3000:]
    TIMINGS["base_s"] = round(time.monotonic() - started, 1)
    started = time.monotonic()
    secret = _ca_bundle()
    _podman("build", *RUN_FLAGS, "--format", "docker", "--from", base.stdout.strip().splitlines()[-1],
            *(["--secret", f"id=pip-ca,src={secret}"] if secret else []), "-t", IMAGE, str(ROOT), timeout=900)
    TIMINGS["build_s"] = round(time.monotonic() - started, 1)
    size = _podman("image", "inspect", IMAGE, "--format", "{{.Size}}").stdout.strip()
    TIMINGS["image_mb"] = round(int(size) / 1e6, 1)
    yield IMAGE
    report = ROOT / "reports" / "container.json"
    report.parent.mkdir(exist_ok=True)
    report.write_text(json.dumps(TIMINGS, indent=2) + "\n")


def _wait_healthy(base: str, container: str, started: float, timeout: float = 90) -> float:
    """Seconds from `started` until the container answers /__admin/health; fails early if it exits."""
    deadline = started + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(base + "/__admin/health", timeout=2).status_code == 200:
                return round(time.monotonic() - started, 2)
        except requests.RequestException:
            pass
        state = _podman("inspect", container, "--format", "{{.State.Status}}", check=False).stdout.strip()
        if state not in ("created", "running"):
            break
        time.sleep(0.1)
    logs = _podman("logs", container, check=False)
    raise AssertionError(f"the container never answered /__admin/health:\n{logs.stdout}{logs.stderr}")


class Container:
    """One detached container of the image, its port published on 127.0.0.1 (or on the host's network)."""

    def __init__(self, image: str, *args: str, env: dict[str, str] | None = None, host_network: bool = False):
        self.port = free_port()
        network = ["--network=host", "-e", f"MOCK_PORT={self.port}"] if host_network else \
            ["-p", f"127.0.0.1:{self.port}:4010"]
        env_flags = [flag for key, value in (env or {}).items() for flag in ("-e", f"{key}={value}")]
        started = time.monotonic()
        self.id = _podman("run", *RUN_FLAGS, "-d", *network, *env_flags, image, "serve", "--now", NOW,
                          *args).stdout.strip()
        self.base = f"http://127.0.0.1:{self.port}"
        self.startup_s = self._wait_healthy(started)

    def _wait_healthy(self, started: float) -> float:
        try:
            return _wait_healthy(self.base, self.id, started)
        except AssertionError:
            self.remove()
            raise

    def logs(self) -> str:
        done = _podman("logs", self.id, check=False)
        return done.stdout + done.stderr

    def stop(self) -> tuple[float, int]:
        """SIGTERM, as `docker stop` sends: the seconds it took and the exit code."""
        started = time.monotonic()
        _podman("stop", "--time", "10", self.id)
        took = time.monotonic() - started
        code = int(_podman("inspect", self.id, "--format", "{{.State.ExitCode}}").stdout.strip())
        return took, code

    def remove(self) -> None:
        _podman("rm", "--force", self.id, check=False)


@pytest.fixture(scope="module")
def locked(image):
    """The image as a container runs by default: bound to 0.0.0.0, no MOCK_ADMIN_TOKEN."""
    container = Container(image)
    TIMINGS["startup_s"] = container.startup_s
    yield container
    container.remove()


def test_the_image_runs_as_non_root_with_the_runtime_only(image):
    user = _podman("image", "inspect", image, "--format", "{{.Config.User}}").stdout.strip()
    assert user == "mock"
    probe = ("import importlib.util as u, os; "
             "print(os.getuid(), [m for m in ('pytest', 'schemathesis', 'playwright', 'tox', 'openapi_core') "
             "if u.find_spec(m)], all(u.find_spec(m) for m in ('flask', 'gunicorn', 'psycopg', 'psycopg_pool')))")
    done = _podman("run", *RUN_FLAGS, "--rm", "--entrypoint", "python3", image, "-c", probe)
    assert done.stdout.split(maxsplit=1)[0] != "0"
    assert done.stdout.strip().endswith("[] True"), done.stdout  # no test tool; the postgres extra is in
    version = _podman("run", *RUN_FLAGS, "--rm", image, "--version").stdout
    assert re.fullmatch(r"insights-mock \d+\.\d+\.\d+ \(spec [^)]+\)\n", version), version


def test_health_is_open_and_the_locked_operator_api_names_mock_admin_token(locked):
    health = requests.get(locked.base + "/__admin/health", timeout=5)
    assert health.status_code == 200 and health.json()["status"] == "ok" and health.json()["port"] == 4010
    for method, path in (("POST", "/__admin/reset"), ("GET", "/__admin/requests"), ("GET", "/__admin/scenario")):
        response = requests.request(method, locked.base + path, headers=ADMIN, timeout=5)
        assert response.status_code == 401, (path, response.text)
        body = response.json()
        assert body["status"] == 401 and body["error"] == "invalid_token" and "MOCK_ADMIN_TOKEN" in body["message"]
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="insights-admin"'
    api = requests.get(locked.base + url("/dashboard/most-viewed"), headers=ADMIN, timeout=5)
    assert api.status_code == 200  # the API itself is not locked
    banner = locked.logs()
    assert "operator API: LOCKED (401) on 0.0.0.0: set MOCK_ADMIN_TOKEN" in banner, banner
    # the Dockerfile's HEALTHCHECK (kept by --format docker), run inside the container as Docker would
    assert _podman("healthcheck", "run", locked.id, check=False).returncode == 0
    assert "listening on http://0.0.0.0:4010" in banner, banner


def test_mock_admin_token_unlocks_the_operator_api_and_sigterm_stops_it_at_once(image):
    container = Container(image, env={"MOCK_ADMIN_TOKEN": "s3cret-admin"})
    try:
        assert requests.post(container.base + "/__admin/reset", timeout=5).status_code == 401
        reset = requests.post(container.base + "/__admin/reset", headers=bearer("s3cret-admin"), timeout=30)
        assert reset.status_code == 200 and reset.json()["status"] == "reset", reset.text
        assert "needs Authorization: Bearer $MOCK_ADMIN_TOKEN" in container.logs()
        assert "s3cret-admin" not in container.logs()
        took, code = container.stop()
        TIMINGS["stop_s"] = round(took, 2)
        assert took < 5 and code == 0, (took, code, container.logs())  # not podman's 10 s SIGKILL
    finally:
        container.remove()


def test_compose_up_serves_the_mock_with_its_healthcheck_and_the_admin_token(image):
    """`docker compose up` as a user runs it, with podman-compose: the `mock` service of compose.yaml, from the
    image built above (tagged as compose names it, so nothing is pulled), published on INSIGHTS_MOCK_PORT,
    MOCK_ADMIN_TOKEN passed through, its healthcheck and init as declared."""
    _podman("tag", image, "localhost/insights-mock:local")
    port, project = free_port(), f"insights-mock-test-{os.getpid()}"
    compose = [str(Path(sys.executable).with_name("podman-compose")), "--podman-args=--runtime=runc",
               "--podman-run-args=" + " ".join(RUN_FLAGS[1:]), "-p", project, "-f", str(ROOT / "compose.yaml")]
    env = {**os.environ, "INSIGHTS_MOCK_PORT": str(port), "MOCK_ADMIN_TOKEN": "s3cret-compose"}

    def run(*args: str) -> subprocess.CompletedProcess:
        done = subprocess.run([*compose, *args], env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"podman-compose {' '.join(args)}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        return done

    started = time.monotonic()
    run("up", "-d", "--no-build", "mock")
    try:
        ids = _podman("ps", "-q", "--filter", f"label=com.docker.compose.project={project}").stdout.split()
        assert len(ids) == 1, ids  # the profile's services stay down
        base = f"http://127.0.0.1:{port}"
        TIMINGS["compose_startup_s"] = _wait_healthy(base, ids[0], started)
        assert requests.post(base + "/__admin/reset", timeout=5).status_code == 401
        reset = requests.post(base + "/__admin/reset", headers=bearer("s3cret-compose"), timeout=30)
        assert reset.status_code == 200, reset.text  # compose handed the variable to the container
        viewed = requests.get(base + url("/dashboard/most-viewed"), headers=ADMIN, timeout=10)
        assert viewed.status_code == 200 and viewed.json()["data"]
        # compose's healthcheck (not the Dockerfile's) and its init, as a user's engine would run them
        config = json.loads(_podman("inspect", ids[0]).stdout)[0]
        assert "urllib.request.urlopen('http://127.0.0.1:4010/__admin/health'" in " ".join(
            config["Config"]["Healthcheck"]["Test"])
        assert config["HostConfig"]["Init"] is True
        assert _podman("healthcheck", "run", ids[0], check=False).returncode == 0
    finally:
        run("down")
    assert _podman("ps", "-aq", "--filter", f"label=com.docker.compose.project={project}").stdout.split() == []


def test_two_replicas_on_one_postgresql_database(image, fresh_database):
    """compose.yaml's `postgres` profile, with this test's PostgreSQL server on 127.0.0.1 (the containers
    share the host's network to reach it): a view recorded on one replica is counted on the other."""
    database_url = fresh_database()
    first = Container(image, "--database-url", database_url, host_network=True)
    try:
        second = Container(image, "--database-url", database_url, host_network=True)
        try:
            most_viewed = requests.get(first.base + url("/dashboard/most-viewed"), headers=ADMIN, timeout=10)
            dashboard = most_viewed.json()["data"][0]["dashboardId"]
            stats = url(f"/dashboard/{dashboard}/stats")
            before = requests.get(second.base + stats, headers=ADMIN, timeout=10).json()["data"]["totalViews"]
            view = requests.post(first.base + url(f"/dashboard/{dashboard}/view"), headers=ADMIN, timeout=10)
            assert view.status_code in (200, 201), view.text
            after = requests.get(second.base + stats, headers=ADMIN, timeout=10).json()["data"]["totalViews"]
            assert after == before + 1
            assert "data in postgresql://" in first.logs()
        finally:
            second.remove()
    finally:
        first.remove()


def _mapping_ids() -> str:
    """No operation lists tool mappings: the ids of the container's data (same seed, anchor and sizes)."""
    from mock_server import create_app

    state = create_app({"NOW": NOW, "VALIDATE_RESPONSES": False}).extensions["insights_mock"]
    return ",".join(m["mappingId"] for m in state.default.make_dataset().mappings[:3])  # the suite names no session


def test_the_contract_suite_passes_against_the_container(locked):
    env = {key: value for key, value in os.environ.items() if not key.startswith("CONTRACT_")}
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "contract_tests", "--base-url", locked.base, "-m", "not meta", "-q",
         "-p", "no:cacheprovider", "-rs"],
        cwd=ROOT, env={**env, **CONTRACT_TOKENS, "CONTRACT_MAPPING_IDS": _mapping_ids()},
        capture_output=True, text=True, timeout=900)
    TIMINGS["contract_s"] = round(time.monotonic() - started, 1)
    tail = "\n".join(done.stdout.splitlines()[-40:])
    assert done.returncode == 0, f"{tail}\n{done.stderr[-3000:]}\n{locked.logs()[-3000:]}"
    summary = re.search(r"(\d+) passed(.*) in [\d.]+s", tail)
    assert summary and int(summary.group(1)) >= 100, tail
    TIMINGS["contract_passed"] = int(summary.group(1))
    assert "failed" not in summary.group(2) and "skipped" not in summary.group(2), tail  # every token given
