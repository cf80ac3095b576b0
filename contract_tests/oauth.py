"""The read-write token from an OAuth2 token endpoint (client credentials grant, RFC 6749 section 4.4).

Staging tokens are short-lived: the suite asks for one at the first request that needs it and again shortly
before `expires_in` runs out, so a run longer than a token's life keeps a valid token. The client
authenticates with HTTP Basic (section 2.3.1, the method every server must support).
"""

from __future__ import annotations

import threading
import time

import requests

# Refresh this long before the announced expiry: a token must not expire between being read and being sent.
REFRESH_MARGIN = 30.0
# With no `expires_in` the token's life is unknown: ask again after this long rather than never.
UNKNOWN_LIFETIME = 300.0


class TokenError(RuntimeError):
    """The token endpoint did not give a token; the message says what it answered."""


class ClientCredentials:
    def __init__(self, token_url: str, client_id: str, client_secret: str, scope: str | None = None, *,
                 timeout: float = 10.0, clock=time.monotonic) -> None:
        self.token_url = token_url
        self._auth = (client_id, client_secret)
        self.scope = scope
        self.timeout = timeout
        self._clock = clock
        self._token: str | None = None
        self._refresh_at = 0.0
        self._lock = threading.Lock()
        self.fetches = 0  # how many tokens were fetched (the tests read it)

    def __call__(self) -> str:
        with self._lock:
            if self._token is None or self._clock() >= self._refresh_at:
                self._fetch()
            return self._token

    def _fetch(self) -> None:
        form = {"grant_type": "client_credentials"}
        if self.scope:
            form["scope"] = self.scope
        where = f"OAuth2 token endpoint {self.token_url}"
        try:
            answer = requests.post(self.token_url, data=form, auth=self._auth, timeout=self.timeout,
                                   headers={"Accept": "application/json"})
        except requests.RequestException as exc:
            raise TokenError(f"{where} could not be reached: {type(exc).__name__}: {str(exc)[:300]}") from None
        try:
            payload = answer.json()
        except ValueError:
            payload = None
        if answer.status_code != 200 or not isinstance(payload, dict) or not isinstance(payload.get("access_token"), str):
            # RFC 6749 section 5.2: the error code and description say why (invalid_client, invalid_scope, ...)
            reason = f"{payload.get('error')}: {payload.get('error_description', '')}" if isinstance(payload, dict) and payload.get("error") else answer.text[:200]
            raise TokenError(f"{where} answered {answer.status_code} without an access_token ({reason})")
        token_type = str(payload.get("token_type", "bearer")).lower()
        if token_type != "bearer":
            raise TokenError(f"{where} gave a {token_type!r} token; the API takes bearer tokens")
        lifetime = payload.get("expires_in")
        lifetime = float(lifetime) if isinstance(lifetime, (int, float)) and lifetime > 0 else UNKNOWN_LIFETIME
        # A very short-lived token is renewed halfway through its life rather than at every request.
        self._token = payload["access_token"]
        self._refresh_at = self._clock() + lifetime - min(REFRESH_MARGIN, lifetime / 2)
        self.fetches += 1
