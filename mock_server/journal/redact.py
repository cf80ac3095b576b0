"""Redaction of the journal's entries: secrets never leave the process's memory.

An entry is redacted before it is shown or written (entry.make_entry applies the rules below).
- the Authorization header (and any header whose name says auth/token/secret/key/cookie/password/session)
  keeps its scheme and becomes a fingerprint: "Bearer …(redacted #3f2a9c1d)"; the same token always gives the
  same fingerprint, so two tokens can be told apart without being shown;
- every known secret (each fixture token, the admin token) is replaced wherever it appears: path, query,
  any header, either body;
- query parameters and JSON/form body fields named like a secret (access_token, password, api_key, ...) and
  anything after "Bearer " are replaced likewise.
Redaction happens before truncation, so a secret cut at the limit cannot leave a readable prefix.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
from collections.abc import Callable, Iterable

BODY_LIMIT = 4096  # bytes of each body kept (after redaction)
_SENSITIVE_NAME = re.compile(r"auth|token|secret|passw|api[-_]?key|apikey|cookie|session|credential|signature",
                             re.IGNORECASE)
# "Bearer <token>" in free text, but not a challenge's `Bearer realm="..."`.
_SCHEME_VALUE = re.compile(r'\b(Bearer|Basic)(\s+)(?![A-Za-z_]+=")([A-Za-z0-9\-._~+/]+=*)', re.IGNORECASE)
_PUBLIC_HEADERS = frozenset({"www-authenticate"})  # a challenge names a realm and an error, no secret
# A JSON "key": "string" pair (the key is checked in the callback: one linear pass, no backtracking).
_JSON_PAIR = re.compile(r'"([^"\\]{1,64})"(\s*:\s*)"((?:[^"\\]|\\.)*)"')
# Words without which the patterns cannot match: most bodies have none, and skip the (slow) regexes. Plain
# substring tests of the lower-cased text: an IGNORECASE alternation costs ~250 us on a 2 KB body, these ~5 us.
_WORDS = ("auth", "token", "secret", "passw", "apikey", "api_key", "api-key", "cookie", "session", "credential",
          "signature")
_WORDS_RX = re.compile("|".join(_WORDS))  # faster than the loop on short strings (header values), slower on long
_FORM_FIELD = re.compile(r"((?:^|[?&;\s])[A-Za-z0-9_.\-]*(?:auth|token|secret|passw|api[-_]?key|apikey|session)"
                         r"[A-Za-z0-9_.\-]*=)(?!…\(redacted )([^&;\s\"']+)", re.IGNORECASE)


@functools.lru_cache(maxsize=1024)
def fingerprint(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()[:8]


def redacted(secret: str) -> str:
    return f"…(redacted #{fingerprint(secret)})"


def _redact_match(match: re.Match) -> str:
    return redacted(match.group(0))


def _needles(secrets: frozenset[str]) -> list[str]:
    """Substrings such that a text holding no needle holds no secret: the secrets grouped by their first
    four characters, each group by its longest common prefix (the fixture tokens are one group, "mock-")."""
    groups: dict[str, list[str]] = {}
    for secret in secrets:
        groups.setdefault(secret[:4], []).append(secret)
    return sorted(os.path.commonprefix(group) for group in groups.values())


class Redactor:
    def __init__(self, secrets: Iterable[str]) -> None:
        self.secrets = frozenset(s for s in secrets if s)
        known = sorted(self.secrets, key=len, reverse=True)  # longest first: no partial hits
        self._known = re.compile("|".join(map(re.escape, known))) if known else None
        self._shortest = min(map(len, known)) if known else 0
        self._needles = _needles(self.secrets)
        # The same test on the raw bytes of a body, before decoding it: a secret found in the decoded text
        # came from its own UTF-8 bytes (a secret with U+FFFD could come from invalid bytes: no shortcut).
        self._byte_needles = None if any("\ufffd" in s for s in self.secrets) else \
            [n.encode("utf-8", "surrogatepass") for n in self._needles]
        self._needle_slack = max((len(n) for n in self._byte_needles or ()), default=1) - 1

    def known_free(self, data: bytes, end: int | None = None) -> bool:
        """Whether no known secret starts in data[:end] once decoded (False: not known). Each needle is a
        prefix of its secrets, so only data[:end + longest needle - 1] is searched: a body cut at `end`
        then needs no more than that, however long it is."""
        if self._byte_needles is None:
            return False
        stop = len(data) if end is None else min(len(data), end + self._needle_slack)
        if stop < self._shortest:
            return True
        return not any(data.find(needle, 0, stop) >= 0 for needle in self._byte_needles)

    def known(self, value: str) -> str:
        """Only the known secrets: enough for what the mock itself wrote (a response can echo a request id,
        never a credential). A plain substring test per group of secrets first (C's fast search: ~0.2 us
        per KB each); the alternation alone costs ~5 us per KB when the secrets share no prefix."""
        if len(value) >= self._shortest:
            for needle in self._needles:
                if needle in value:
                    return self._known.sub(_redact_match, value)
        return value

    def text(self, value: str) -> str:
        value = self.known(value)
        low = value.lower()
        if "bearer" in low or "basic" in low:
            value = _SCHEME_VALUE.sub(lambda m: m.group(1) + m.group(2) + _once(m.group(3)), value)
        if (_WORDS_RX.search(low) if len(low) < 256 else any(word in low for word in _WORDS)):
            if '"' in value:
                value = _JSON_PAIR.sub(_json_pair, value)
            if "=" in value:
                value = _FORM_FIELD.sub(lambda m: m.group(1) + _once(m.group(2)), value)
        return value

    def header(self, name: str, value: str) -> str:
        if _plain_header(name):
            return self.known(value)
        if _sensitive_header(name):
            scheme, space, rest = value.strip().partition(" ")
            if space and rest and scheme.isalpha():
                return f"{scheme} {_once(rest.strip())}"
            return _once(value.strip()) if value.strip() else value
        return self.text(value)

    def query(self, pairs: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for name, value in pairs:
            safe = _once(value) if value and _sensitive_header(name) else self.text(value)
            out.setdefault(self.text(name), []).append(safe)
        return out


# Headers whose values are structural (hosts, types, lengths, agents): only known secrets are looked for.
_PLAIN = frozenset({"host", "content-length", "content-type", "accept", "accept-encoding", "accept-language",
                    "connection", "user-agent", "origin", "cache-control", "pragma", "x-request-id", "prefer",
                    "if-none-match", "if-modified-since", "dnt", "priority", "upgrade-insecure-requests"})


@functools.lru_cache(maxsize=512)
def _plain_header(name: str) -> bool:
    low = name.lower()
    return low in _PLAIN or low.startswith("sec-")


@functools.lru_cache(maxsize=512)
def _sensitive_header(name: str) -> bool:
    return bool(_SENSITIVE_NAME.search(name)) and name.lower() not in _PUBLIC_HEADERS


def _json_pair(match: re.Match) -> str:
    key, colon, value = match.groups()
    if not _SENSITIVE_NAME.search(key) or not value:
        return match.group(0)
    return f'"{key}"{colon}"{_once(value)}"'


def _once(value: str) -> str:
    """Redact a value unless it already is a redaction (a known secret replaced a step before)."""
    return value if value.startswith("…(redacted #") else redacted(value)


def body_text(data: bytes, mimetype: str | None, redact: Callable[[str], str],
              size: int | None = None, free: Callable[[bytes], bool] | None = None) -> tuple[str | None, bool]:
    """(the body as redacted text, bounded, with a truncation marker; whether it was truncated). `data` may be
    the first bytes of a body of `size` bytes. `free(data, end)` True promises that `redact` would change
    nothing in data[:end]: then only the part kept is decoded, and a secret after the cut is cut anyway.
    A secret that starts before the cut is redacted before the cut is made (no readable prefix is left)."""
    if not data:
        return None, False
    size = len(data) if size is None else size
    textual = mimetype is None or mimetype.startswith("text/") or mimetype.endswith(("json", "yaml", "xml")) \
        or mimetype in ("application/x-www-form-urlencoded", "application/javascript")
    if not textual:
        return f"({size} bytes of {mimetype})", False
    if free is not None:
        if len(data) > BODY_LIMIT or size != len(data):  # to be cut: only the part kept needs decoding
            if free(data, BODY_LIMIT):
                return data[:BODY_LIMIT].decode("utf-8", "ignore") + f"…[truncated: {size} bytes in all]", True
        elif free(data, len(data)):
            try:
                return data.decode("utf-8"), False
            except UnicodeDecodeError:  # replacement characters may make it longer than the limit: below
                pass
    text = redact(data.decode("utf-8", "replace"))
    encoded = text.encode("utf-8")
    if len(encoded) <= BODY_LIMIT and size == len(data):
        return text, False
    return encoded[:BODY_LIMIT].decode("utf-8", "ignore") + f"…[truncated: {size} bytes in all]", True
