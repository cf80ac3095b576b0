"""compose.yaml and the Dockerfile agree with the CLI they run: every command parses with insights-mock's own
argument parser, the healthchecks probe the one operator endpoint that needs no token, and the replicas of the
`postgres` profile point at that profile's database with its credentials. (tests/system/test_container.py
builds and runs the image itself; no registry here has the postgres image, so compose is checked statically.)"""

from __future__ import annotations

import json
import re
from urllib.parse import urlsplit

import yaml

from mock_helpers import ROOT
from mock_server.cli import build_parser

COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
DOCKERFILE = (ROOT / "Dockerfile").read_text(encoding="utf-8")


def _instruction(name: str) -> list[str]:
    found = re.findall(rf"^{name} (\[.*\])$", DOCKERFILE, re.MULTILINE)
    assert len(found) == 1, f"one JSON-form {name} expected"
    return json.loads(found[0])


def test_the_images_entrypoint_and_command_parse_as_a_serve():
    assert _instruction("ENTRYPOINT") == ["insights-mock"]
    args = build_parser().parse_args(_instruction("CMD"))
    assert args.command == "serve"
    assert "ENV MOCK_HOST=0.0.0.0" in DOCKERFILE.replace("\\\n", "")  # reachable from outside the container
    assert re.search(r"^USER (?!root)\w+$", DOCKERFILE, re.MULTILINE)
    assert len(re.findall(r"^FROM ", DOCKERFILE, re.MULTILINE)) == 1  # the one FROM podman build --from replaces


def test_every_service_of_the_image_has_the_open_health_probe_and_a_command_that_parses():
    services = COMPOSE["services"]
    mocks = {name: s for name, s in services.items() if s.get("image") == "insights-mock:local"}
    assert set(mocks) == {"mock", "replica-1", "replica-2"}
    for name, service in mocks.items():
        probe = " ".join(service["healthcheck"]["test"])
        assert "http://127.0.0.1:4010/__admin/health" in probe, name
        args = build_parser().parse_args(service.get("command", _instruction("CMD")))
        assert args.command == "serve", name
        assert service["environment"]["MOCK_ADMIN_TOKEN"] == "${MOCK_ADMIN_TOKEN:-}"  # locked unless given
    ports = [port for service in mocks.values() for port in service["ports"]]
    assert len(ports) == len(set(ports)) == 3


def test_the_replicas_share_the_profiles_database_with_its_credentials():
    services = COMPOSE["services"]
    db = services["postgres"]
    assert db["profiles"] == ["postgres"]
    for name in ("replica-1", "replica-2"):
        replica = services[name]
        assert replica["profiles"] == ["postgres"]
        assert replica["depends_on"]["postgres"]["condition"] == "service_healthy"
        url = urlsplit(build_parser().parse_args(replica["command"]).DATABASE_URL)
        env = db["environment"]
        assert (url.scheme, url.hostname, url.username, url.password, url.path) == \
            ("postgresql", "postgres", env["POSTGRES_USER"], env["POSTGRES_PASSWORD"], "/" + env["POSTGRES_DB"])
    assert "profiles" not in services["mock"]  # `docker compose up` alone starts the plain mock
