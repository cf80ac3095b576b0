"""Fixtures for the mock's unit tests.

Every response the test client receives for a path and method of the spec is also validated with
openapi-core, independently of the app's own compiled validators (which run too, and raise in TESTING).
A response openapi-core rejects fails the test that made the request.
"""

from __future__ import annotations

import copy
import itertools
import os
from collections.abc import Callable, Iterator

import pytest
import yaml
from flask.testing import FlaskClient
from openapi_core import OpenAPI
from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest, WerkzeugOpenAPIResponse
from openapi_core.templating.paths.exceptions import OperationNotFound, PathNotFound

from mock_server import create_app
from mock_helpers import NOW, SMALL, SPEC_PATH


def _openapi() -> OpenAPI:
    document = yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))
    document = copy.deepcopy(document)
    document["servers"] = [{"url": "/"}]  # the test client's host is not the spec's 127.0.0.1:4010
    return OpenAPI.from_dict(document)


OPENAPI = _openapi()


class _ResponseSideRequest(WerkzeugOpenAPIRequest):
    """The request as openapi-core needs it to judge a response. Its body was consumed by the app, and no
    operation has a request body, so it reads as empty."""

    @property
    def body(self) -> bytes:
        return b""


class SpecCheckedClient(FlaskClient):
    """A test client whose every response of a spec operation must satisfy openapi-core."""

    checked = 0  # responses validated (class-wide), so a test can assert the checker ran

    def open(self, *args, **kwargs):
        response = super().open(*args, **kwargs)
        request = response.request
        if request.method in ("HEAD", "OPTIONS"):
            return response
        try:
            OPENAPI.validate_response(_ResponseSideRequest(request), WerkzeugOpenAPIResponse(response))
        except (PathNotFound, OperationNotFound):
            return response  # not an operation of the spec (routing errors, /__admin, /openapi.yaml)
        except Exception as exc:  # noqa: BLE001 - any openapi-core complaint is a failure here
            pytest.fail(f"openapi-core rejects {request.method} {request.full_path} -> "
                        f"{response.status_code}: {exc!r} {getattr(exc, '__cause__', '')!r}\n"
                        f"{response.get_data(as_text=True)[:2000]}")
        SpecCheckedClient.checked += 1
        return response


def make_app(**overrides):
    config = {"TESTING": True, "NOW": NOW, **SMALL, **overrides}
    app = create_app(config)
    app.test_client_class = SpecCheckedClient
    return app


@pytest.fixture
def app():
    app = make_app()
    yield app
    app.extensions["insights_mock"].close()


@pytest.fixture
def app_factory() -> Iterator[Callable[..., object]]:
    made = []

    def factory(**overrides):
        made.append(make_app(**overrides))
        return made[-1]

    yield factory
    for app in made:
        app.extensions["insights_mock"].close()


@pytest.fixture
def client(app) -> SpecCheckedClient:
    return app.test_client()


@pytest.fixture
def state(app):
    return app.extensions["insights_mock"]


@pytest.fixture
def generated(state):
    """The generated data the app was loaded with (same seed and anchor), for expectations."""
    return state.default.make_dataset()


# -- a real PostgreSQL server (mock_server/testing/postgres.py), for the PostgreSQL store and replicas -----

REQUIRE_POSTGRES = "INSIGHTS_MOCK_REQUIRE_POSTGRES"  # CI sets it (.ci/run): no server is a failure there
_database_names = itertools.count(1)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """The URL of the `postgres` database of a throwaway server started for this test session. Without
    PostgreSQL's server binaries the tests that need it are skipped, unless INSIGHTS_MOCK_REQUIRE_POSTGRES=1."""
    from mock_server.testing.postgres import PostgresUnavailable, running_postgres

    try:
        server = running_postgres()
        url = server.__enter__()
    except PostgresUnavailable as exc:
        if os.environ.get(REQUIRE_POSTGRES) == "1":
            pytest.fail(f"{exc} ({REQUIRE_POSTGRES}=1: these tests must run here)")
        pytest.skip(f"{exc} (the PostgreSQL store's tests need it)")
    try:
        yield url
    finally:
        server.__exit__(None, None, None)


@pytest.fixture
def fresh_database(postgres_url) -> Callable[[], str]:
    """A factory: the URL of a new, empty database on the session's server (one per call)."""
    from mock_server.testing.postgres import create_database

    return lambda: create_database(postgres_url, f"test_{os.getpid()}_{next(_database_names)}")


@pytest.fixture
def make_postgres_store(fresh_database) -> Iterator[Callable[..., object]]:
    """A factory: a fresh PostgresStore on a fresh database (closed after the test). With `url`, another store
    on that database (as a second replica opens it)."""
    from mock_server.store.postgres import PostgresStore

    made = []

    def factory(url: str | None = None, **options):
        made.append(PostgresStore(url or fresh_database(), **options))
        return made[-1]

    yield factory
    for store in made:
        store.close()
