"""The handlers of the seven operations: thin functions named by operationId.

Each resource module lists its handlers in HANDLERS. By the time a handler runs, the request was
authenticated, authorised and validated (mock_server.http.pipeline); the handler gets a `Call` with the
typed parameters and the principal, asks the store (plain data back), and wraps the result in the
`{data, message}` envelope (an `Ok`), which `answer` serialises. `answer` reuses a GET's answer while the
data is unchanged (api/cache.py): so a GET handler may depend on its parameters, the caller's user,
today's date and the session's store, and on nothing else.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from ..auth import Principal
from ..spec import Operation

if TYPE_CHECKING:  # a session holds the response cache of this package: imported for types only
    from ..sessions import Session

Handler = Callable[["Call"], "Ok"]


@dataclass(slots=True)
class Ok:
    """A handler's success: the envelope, before serialisation."""

    payload: dict[str, Any]
    status: int = 200

    def body(self) -> bytes:
        return orjson.dumps(self.payload)


@dataclass(slots=True)  # made for every request: no frozen-dataclass __setattr__ detour
class Call:
    """What a handler may use: the operation, its validated parameters, the caller, and the session whose
    state answers (mock_server.sessions)."""

    op: Operation
    params: dict[str, Any]
    principal: Principal
    session: Session

    @property
    def store(self):
        return self.session.store

    @property
    def clock(self):
        return self.session.clock

    def ok(self, data: Any, **extra: Any) -> Ok:
        return Ok({"data": data, "message": self.op.success_message, **extra})


def answer(handler: Handler, call: Call) -> tuple[int, bytes]:
    """The handler's status and body, or, for a GET, the same answer kept from an earlier call made on the
    same data (api/cache.py)."""
    cache = call.session.response_cache
    if cache is None or call.op.method != "GET":
        return _run(handler, call)
    key = cache.key(call.op.operation_id, call.principal.user_id, call.clock.today(), call.params)
    return cache.get(key, lambda: _run(handler, call))


def _run(handler: Handler, call: Call) -> tuple[int, bytes]:
    result = handler(call)
    return result.status, result.body()


def handlers() -> dict[str, Handler]:
    """operationId -> handler, from every resource module."""
    from . import audit_logs, dashboards  # they import Call and Ok from here

    return {handler.__name__: handler for module in (dashboards, audit_logs) for handler in module.HANDLERS}
