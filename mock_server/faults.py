"""Forced responses, delays and server-wide latency/error rate.

Per request (Prism-compatible where Prism has a syntax):
  Prefer: code=500             answer the operation's documented 500 (its example body)
  ?__code=403                  the same from the query string (wins over Prefer); never validated as a
                               parameter of the operation
  Prefer: delay=250            wait 250 ms first (capped at MAX_DELAY_MS); replaces the server-wide latency
  Prefer: code=500, delay=100  both; several Prefer headers combine, the first mention of a key wins
                               (RFC 7240); preferences we do not know (return=minimal, ...) are ignored,
                               but Prism's example= and dynamic= are a 400 that says what this mock
                               supports: a team moving from Prism would otherwise get a silent 200
Server-wide: LATENCY "50-300" (uniform, ms) or "100"; ERROR_RATE 0.05 (that share of API requests answer
the documented 500). Both draw from one RNG seeded with SEED, behind a lock, so a sequence of requests
gets the same delays and failures on every run with the same seed.

A forced code is served before authentication (a frontend can show its error screens without a token),
after the delay, and is the operation's static example: a forced 200 of recordDashboardView records
nothing. A malformed Prefer or __code, or a code the operation does not document, is a 400 even without a
token, for the same reason; but only where the operation documents a 400: on the others (recently and most
viewed) it is ignored and the request is answered as if it had not been sent (no Preference-Applied). The response
header `Preference-Applied` says what was applied. Operator endpoints, /openapi.yaml and CORS preflights
get no latency and no injected errors.
"""

from __future__ import annotations

import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from .config import ConfigError
from .errors import BadRequest

MAX_DELAY_MS = 10_000
_TOKEN = r"[A-Za-z0-9!#$%&'*+.^_`|~-]"  # RFC 7230 tchar
_PREFERENCE = re.compile(rf'\s*({_TOKEN}+)\s*(?:=\s*("(?:[^"\\]|\\.)*"|{_TOKEN}*))?\s*')
_CODE = re.compile(r"[1-5][0-9]{2}")
_MS = re.compile(r"[0-9]{1,9}")
# Prism's preferences that this mock cannot honour, and why (its answers come from its seeded data).
PRISM_ONLY = {
    "example": "answers come from the mock's seeded data, not from the spec's named examples "
               "(a forced code= answers the operation's documented example for that code)",
    "dynamic": "answers come from the mock's seeded data, the same on every run with one --seed, "
               "never generated at random per request",
}


@dataclass(frozen=True)
class FaultPlan:
    code: int | None = None
    code_source: str | None = None  # "query" or "header", for the error message
    delay_ms: int | None = None  # requested via Prefer; None = use server-wide latency

    @property
    def applied(self) -> str | None:
        parts = []
        if self.code is not None:
            parts.append(f"code={self.code}")
        if self.delay_ms is not None:
            parts.append(f"delay={self.delay_ms}")
        return ", ".join(parts) or None


def parse_latency(text: str | None) -> tuple[int, int] | None:
    """"50-300" -> (50, 300); "100" -> (100, 100); None/""/"0" -> None."""
    if text is None or str(text).strip() in ("", "0"):
        return None
    match = re.fullmatch(r"\s*([0-9]+)\s*(?:-\s*([0-9]+)\s*)?", str(text))
    if match is None:
        raise ConfigError(f"latency must be milliseconds like 100 or a range like 50-300, not {text!r}")
    low = int(match.group(1))
    high = int(match.group(2)) if match.group(2) is not None else low
    if low > high:
        raise ConfigError(f"latency range {text!r} is backwards")
    if high > MAX_DELAY_MS:
        raise ConfigError(f"latency is capped at {MAX_DELAY_MS} ms")
    return low, high


def parse_prefer(values: list[str]) -> dict[str, str]:
    """RFC 7240 preferences of one or more Prefer headers, names lower-cased, first mention wins.
    Parameters after ';' are ignored (none of ours take any)."""
    found: dict[str, str] = {}
    for header in values:
        for item in _split(header):
            if not item.strip():
                continue
            head = item.split(";", 1)[0]
            match = _PREFERENCE.fullmatch(head)
            if match is None:
                raise _bad("header", "Prefer", "cannot parse the header; expected preferences like code=500, delay=250")
            name, value = match.group(1).lower(), match.group(2) or ""
            if value.startswith('"'):
                value = re.sub(r"\\(.)", r"\1", value[1:-1])
            found.setdefault(name, value)
    return found


def _split(header: str) -> list[str]:
    """Split on commas outside quoted strings; an unterminated quote is a malformed header."""
    items, current, quoted, escaped = [], [], False, False
    for char in header:
        if escaped:
            escaped = False
        elif quoted and char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            items.append("".join(current))
            current = []
            continue
        current.append(char)
    if quoted:
        raise _bad("header", "Prefer", "unterminated quoted string")
    items.append("".join(current))
    return items


def _bad(location: str, name: str, message: str) -> BadRequest:
    return BadRequest("Bad Request - Invalid fault injection request",
                      details=[{"location": location, "name": name, "message": message}])


class Faults:
    """Per-app fault state: the seeded RNG, the latency range, the error rate and the sleep function
    (tests swap `sleep` to observe delays without waiting)."""

    def __init__(self, *, seed: int, latency: tuple[int, int] | None, error_rate: float,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if not 0.0 <= error_rate <= 1.0:
            raise ConfigError(f"error rate must be between 0 and 1, not {error_rate}")
        self.seed = seed
        self.latency = latency
        self.error_rate = error_rate
        self.sleep = sleep
        self._lock = threading.Lock()
        self._rng = random.Random(seed)

    def reset(self) -> None:
        with self._lock:
            self._rng = random.Random(self.seed)

    def plan(self, prefer_headers: list[str], query, documented: tuple[int, ...]) -> FaultPlan:
        """Read Prefer and __code; raise BadRequest for malformed values or undocumented codes. On an operation
        that documents no 400 (the source lists none for recently/most viewed) nothing is refused: what cannot
        be honoured is ignored, as RFC 7240 lets a server ignore a preference, and the answer is the normal one
        (no Preference-Applied). That includes Prism's example= and dynamic=, refused elsewhere."""
        refuse = 400 in documented
        try:
            prefs = parse_prefer(prefer_headers)
        except BadRequest:
            if refuse:
                raise
            prefs = {}
        for name in PRISM_ONLY:
            if name in prefs and refuse:
                raise _bad("header", "Prefer", f"{name}= is Prism's and not supported here: {PRISM_ONLY[name]}; "
                           f"this mock supports code=<status> (documented here: {', '.join(map(str, documented))}; "
                           "also as ?__code=) and delay=<ms>")
        code, source = None, None
        if "code" in prefs:
            code = self._honoured(refuse, self._code, prefs["code"], "header", "Prefer", documented)
            source = "header" if code is not None else None
        codes = query.getlist("__code")
        if codes:
            if len(codes) > 1 and refuse:
                raise _bad("query", "__code", "give __code once")
            forced = self._honoured(refuse, self._code, codes[0], "query", "__code", documented) \
                if len(codes) == 1 else None
            if forced is not None:
                code, source = forced, "query"
        delay = None
        if "delay" in prefs:
            delay = self._honoured(refuse, self._delay, prefs["delay"])
        return FaultPlan(code=code, code_source=source, delay_ms=delay)

    @staticmethod
    def _honoured(refuse: bool, read: Callable, *args):
        """read(*args), or None when it refuses the value and the operation cannot answer 400."""
        try:
            return read(*args)
        except BadRequest:
            if refuse:
                raise
            return None

    @staticmethod
    def _delay(raw: str) -> int:
        raw = raw.strip()
        if not _MS.fullmatch(raw):
            raise _bad("header", "Prefer", f"delay must be a whole number of milliseconds (0 to {MAX_DELAY_MS})")
        return min(int(raw), MAX_DELAY_MS)

    @staticmethod
    def _code(raw: str, location: str, name: str, documented: tuple[int, ...]) -> int:
        listed = ", ".join(map(str, documented))
        raw = raw.strip()
        if not _CODE.fullmatch(raw):
            raise _bad(location, name, f"code must be an HTTP status code, one of {listed}")
        code = int(raw)
        if code not in documented:
            raise _bad(location, name, f"code {code} is not documented for this operation; documented: {listed}")
        return code

    def draw(self) -> tuple[float, bool]:
        """The server-wide latency (ms) and whether to fail, for one API request. Both values are drawn for
        every request, used or not, so the sequence only depends on the number of requests."""
        with self._lock:
            latency_u = self._rng.random()
            fail_u = self._rng.random()
        latency = 0.0
        if self.latency is not None:
            low, high = self.latency
            latency = low + (high - low) * latency_u
        return latency, fail_u < self.error_rate

    def wait(self, ms: float) -> None:
        if ms > 0:
            self.sleep(ms / 1000.0)
