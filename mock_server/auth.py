"""Bearer tokens from fixtures/tokens.yaml, and the scope/role check of each operation.

What an operation needs is read from the spec (`x-required-scopes`: any one; `x-required-roles`: any
one), never restated here. Failures raise `Unauthorized` / `Forbidden` carrying an RFC 6750
`WWW-Authenticate` challenge; the token itself never appears in a message, header or log.

Token lookup is constant time in the sense that matters: the candidate is hashed, then compared with
`hmac.compare_digest` against the hash of every known token, with no early exit, so timing reveals
neither which token matched nor how much of one.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import yaml

from .errors import Forbidden, Unauthorized
from .spec import Operation

REALM = "insights"
INSUFFICIENT_ROLE = "insufficient_role"  # the Error body's code of a 403 for the site role (not RFC 6750's)
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")  # RFC 6750 section 2.1
_OBJECT_ID = re.compile(r"[0-9a-fA-F]{24}")


class TokenFileError(ValueError):
    """tokens.yaml is missing or malformed."""


@dataclass(frozen=True)
class Principal:
    """The user behind a valid token."""

    user: dict  # {id, email, name, role}: what the store records views and audit entries for
    role: str
    scopes: frozenset[str]
    expires: datetime | None

    @property
    def user_id(self) -> str:
        return self.user["id"]


@dataclass(frozen=True)
class _Entry:
    digest: bytes
    principal: Principal


class TokenRegistry:
    def __init__(self, account: str, entries: list[tuple[str, Principal]]) -> None:
        self.account = account
        self._entries = [_Entry(_digest(token), principal) for token, principal in entries]
        self._plain = list(entries)  # for the start-up banner only; never logged or echoed

    @classmethod
    def from_file(cls, path: str | Path) -> TokenRegistry:
        path = Path(path)
        try:
            document = yaml.safe_load(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise TokenFileError(f"cannot read the tokens file {path}: {exc.strerror}") from exc
        except yaml.YAMLError as exc:
            raise TokenFileError(f"{path} is not valid YAML: {exc}") from exc
        if not isinstance(document, dict) or not isinstance(document.get("tokens"), list):
            raise TokenFileError(f"{path}: expected a mapping with a `tokens` list")
        entries: list[tuple[str, Principal]] = []
        seen: set[str] = set()
        for index, item in enumerate(document["tokens"]):
            where = f"{path}: tokens[{index}]"
            try:
                token, user, role = item["token"], item["user"], item["role"]
                scopes = item.get("scopes", [])
                user = {"id": str(user["id"]).lower(), "email": str(user["email"]),
                        "name": str(user["name"]), "role": str(role)}
            except (KeyError, TypeError) as exc:
                raise TokenFileError(f"{where}: needs token, user {{id, email, name}}, role ({exc})") from exc
            if not isinstance(token, str) or not _B64TOKEN.fullmatch(token):
                raise TokenFileError(f"{where}: a token must be a non-empty RFC 6750 b64token")
            if token in seen:
                raise TokenFileError(f"{where}: duplicate token")
            if not _OBJECT_ID.fullmatch(user["id"]):
                raise TokenFileError(f"{where}: user id must be a 24-hex ObjectId")
            if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
                raise TokenFileError(f"{where}: scopes must be a list of strings")
            expires = None
            if item.get("expires") is not None:
                expires = _instant(str(item["expires"]), where)
            seen.add(token)
            entries.append((token, Principal(user=user, role=str(role), scopes=frozenset(scopes),
                                             expires=expires)))
        account = str(document.get("account") or "org-mock")
        return cls(account, entries)

    @property
    def tokens(self) -> list[str]:
        return [token for token, _ in self._plain]

    def entries(self) -> list[tuple[str, Principal]]:
        return list(self._plain)

    @property
    def users(self) -> list[dict]:
        """Every token's user once, in file order: the data generator gives each a history."""
        unique: dict[str, dict] = {}
        for entry in self._entries:
            unique.setdefault(entry.principal.user_id, dict(entry.principal.user))
        return list(unique.values())

    def authenticate(self, authorization: str | None, now: datetime) -> Principal:
        """The principal of a valid `Authorization: Bearer` header; raises Unauthorized otherwise."""
        if authorization is None or not authorization.strip():
            raise _challenge(None, "No Authorization header; send Authorization: Bearer <token>")
        scheme, _, credentials = authorization.strip().partition(" ")
        if scheme.lower() != "bearer":
            # RFC 6750 3.1: an unsupported scheme is "no authentication information" - no error code.
            raise _challenge(None, "The Authorization scheme must be Bearer")
        credentials = credentials.strip()
        if not _B64TOKEN.fullmatch(credentials):
            raise _challenge("invalid_token", "The access token is malformed")
        candidate = _digest(credentials)
        found: Principal | None = None
        for entry in self._entries:  # no early exit: every token is compared
            if hmac.compare_digest(candidate, entry.digest):
                found = entry.principal
        if found is None:
            raise _challenge("invalid_token", "The access token is not recognised")
        if found.expires is not None and now >= found.expires:
            raise _challenge("invalid_token", "The access token expired")
        return found


def authorize(principal: Principal, op: Operation) -> None:
    """Raise Forbidden unless the token has one of the operation's scopes and one of its roles.

    Only a missing scope is RFC 6750's insufficient_scope, with the scopes that would do: a client may fetch a
    token with one of them. A missing role is no matter of the token (a new token of the same user has the same
    role), so it gets its own code, insufficient_role, and a challenge that claims no error and no scope."""
    if not principal.scopes & op.required_scopes:
        reason = f"Requires scope {' or '.join(op.required_scopes_ordered)}"
        header = (f'Bearer realm="{REALM}", error="insufficient_scope", '
                  f'scope="{" ".join(op.required_scopes_ordered)}", error_description="{reason}"')
        error = Forbidden.error
    elif principal.role not in op.required_roles:
        reason = f"Requires one of the roles {', '.join(op.required_roles_ordered)}"
        header = f'Bearer realm="{REALM}", error_description="{reason}"'
        error = INSUFFICIENT_ROLE
    else:
        return
    raise Forbidden(headers={"WWW-Authenticate": header}, error=error,
                    details=[{"location": "header", "name": "Authorization", "message": reason}])


def may_call(principal: Principal, op: Operation) -> bool:
    """Whether authorize() lets the token through (expiry aside): what the banner and /docs show per token."""
    try:
        authorize(principal, op)
    except Forbidden:
        return False
    return True


def _challenge(error: str | None, description: str) -> Unauthorized:
    header = f'Bearer realm="{REALM}"'
    if error is not None:
        header += f', error="{error}", error_description="{description}"'
    return Unauthorized(headers={"WWW-Authenticate": header},
                        details=[{"location": "header", "name": "Authorization", "message": description}])


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def _instant(text: str, where: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise TokenFileError(f"{where}: expires must be an ISO 8601 instant, not {text!r}") from exc
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def forced_challenge(op: Operation, status: int) -> dict[str, str]:
    """The WWW-Authenticate header a forced 401/403 (Prefer: code=...) must carry, as the spec requires."""
    if status == 401:
        return {"WWW-Authenticate": f'Bearer realm="{REALM}", error="invalid_token", '
                                    f'error_description="Forced by the client (Prefer code or __code)"'}
    if status == 403:
        return {"WWW-Authenticate": f'Bearer realm="{REALM}", error="insufficient_scope", '
                                    f'scope="{" ".join(op.required_scopes_ordered)}"'}
    return {}
