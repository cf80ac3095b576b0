"""Fixtures for the mock's unit tests.

Every response the test client receives for a path and method of the spec is also validated with
openapi-core, independently of the app's own compiled validators (which run too, and raise in TESTING).
A response openapi-core rejects fails the test that made the request.
"""

from __future__ import annotations

import copy
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
    app.extensions["insights_mock"].store.close()


@pytest.fixture
def app_factory() -> Iterator[Callable[..., object]]:
    made = []

    def factory(**overrides):
        made.append(make_app(**overrides))
        return made[-1]

    yield factory
    for app in made:
        app.extensions["insights_mock"].store.close()


@pytest.fixture
def client(app) -> SpecCheckedClient:
    return app.test_client()


@pytest.fixture
def state(app):
    return app.extensions["insights_mock"]


@pytest.fixture
def generated(state):
    """The generated data the app was loaded with (same seed and anchor), for expectations."""
    return state.make_dataset()
