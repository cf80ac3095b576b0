"""Is a live target an API the suite can test? Asked once before the tests, with retries.

One unauthenticated request to an operation without path parameters: any JSON answer below 500 will do (a 401
is the expected one). A 5xx, a timeout or a refused connection may be passing (a flaky staging, a server still
starting), so they are retried with exponential backoff before the target is given up; an answer that is not
JSON (a proxy, a login page, a wrong URL) will not change and is not retried. The verdict becomes one test case
(test_verdict.py::test_target_is_usable), so even an unusable target gives a JUnit file and a report.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import requests

from contract_tests import checks, spec

ATTEMPTS = 4
BACKOFF = 0.5  # seconds before the 2nd attempt; doubled each time (0.5, 1, 2: 3.5 s of waiting in all)


@dataclass
class ProbeResult:
    problem: str | None  # why the target cannot be used, or None
    attempts: list[str] = field(default_factory=list)  # what each attempt got, for the failure message

    @property
    def usable(self) -> bool:
        return self.problem is None


def _once(tgt, timeout: float) -> tuple[str | None, bool]:
    """(problem or None, whether retrying could help)."""
    probe = next(op for op in spec.operations() if not op.path_params)
    where = f"{probe.method} {probe.path}"
    try:
        answer = tgt.raw(probe.method, probe.path)
    except requests.Timeout:
        return f"no answer to {where} within {timeout:g} s (timed out; --request-timeout sets the limit)", True
    except requests.ConnectionError as exc:
        text = str(exc)
        if "refused" in text.lower():
            return f"connection refused: nothing listens there ({where})", True
        return f"cannot connect for {where}: {type(exc).__name__}: {text[:300]}", True
    except requests.RequestException as exc:
        return f"{where} failed: {type(exc).__name__}: {str(exc)[:300]}", False
    content_type = checks.header(answer, "content-type") or "no content type"
    start = (answer.content or b"")[:120]
    if answer.status_code >= 500:
        return (f"{where} answered {answer.status_code} ({content_type}): the server is failing "
                f"(body starts {start!r})"), True
    if not content_type.lower().startswith("application/json") or checks.body(answer) is None:
        return (f"{where} answered {answer.status_code} with {content_type}, not JSON: this is not the API "
                f"(a proxy, a login page or a wrong --base-url? body starts {start!r})"), False
    return None, False


def probe(tgt, timeout: float, attempts: int = ATTEMPTS, backoff: float = BACKOFF, sleep=time.sleep) -> ProbeResult:
    result = ProbeResult(problem=None)
    for attempt in range(attempts):
        problem, transient = _once(tgt, timeout)
        if problem is None:
            return result
        result.attempts.append(problem)
        if not transient or attempt == attempts - 1:
            break
        sleep(backoff * 2 ** attempt)
    tries = len(result.attempts)
    result.problem = result.attempts[-1] + (f" (the same after {tries} attempts with backoff)" if tries > 1 else "")
    return result
