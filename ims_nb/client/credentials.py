"""Temporary AK/SK for a password login: asked of IAM with its token, signing OBS requests, renewed before expiry."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from ims_nb.client import wire
from ims_nb.client.auth import Clock, ObsAuth
from ims_nb.errors import MalformedAnswerError, register_secrets

log = logging.getLogger("ims_nb")

#: How long temporary credentials are asked for (IAM gives 900 s to 86400 s).
DURATION_SECONDS = 3600
#: Ask for new ones this long before they expire.
REFRESH_MARGIN = 600.0
#: The OBS code (403) for a temporary AK whose security token is missing, wrong or expired.
TOKEN_REFUSED_CODE = "InvalidAccessKeyId"
SECURITYTOKENS_PATH = "/v3.0/OS-CREDENTIAL/securitytokens"
#: The names IAM's answer may use for each field, as the official SDK reads them (``StsAccessor``).
_FIELDS = {
    "access": ("access", "accessKeyId"),
    "secret": ("secret", "secretAccessKey"),
    "security_token": ("securitytoken", "securityToken"),
    "expires_at": ("expires_at", "expiration"),
}

Flow = Generator[httpx.Request, httpx.Response, httpx.Response]


@dataclass(frozen=True)
class TemporaryCredential:
    """A temporary AK/SK, its security token and its expiry (POSIX seconds); the SK and token are never shown."""

    access: str
    secret: str
    security_token: str
    expires_at: float

    def __repr__(self) -> str:
        return (f"TemporaryCredential(access={self.access!r}, secret='***', security_token='***', "
                f"expires_at={self.expires_at})")  # fmt: skip


def securitytoken_request(iam_base: str, duration_seconds: int = DURATION_SECONDS) -> httpx.Request:
    """``POST /v3.0/OS-CREDENTIAL/securitytokens`` with the token method (the caller's IAM token authenticates)."""
    body = {"auth": {"identity": {"methods": ["token"], "token": {"duration_seconds": duration_seconds}}}}
    return httpx.Request("POST", wire.url(iam_base, SECURITYTOKENS_PATH), headers=wire.POST_HEADERS, json=body)


def parse_credential(response: httpx.Response) -> TemporaryCredential:
    """IAM's ``201 {"credential": {access, secret, securitytoken, expires_at}}``; the secrets are masked from now on.

    Raises:
        ApiError: IAM refused (``AuthError`` for 401/403).
        MalformedAnswerError: the answer lacks a field or its expiry is not a time.
    """
    body = wire.parse_object(response)
    found = body.get("credential") or body.get("credentials")
    fields = {name: _field(found, names) for name, names in _FIELDS.items()}
    register_secrets(fields["secret"], fields["security_token"])
    try:
        expires = datetime.fromisoformat(str(fields["expires_at"]).replace("Z", "+00:00"))
    except ValueError:
        expires = None
    if None in fields.values() or expires is None:
        missing = sorted(name for name, value in fields.items() if value is None) or ["a valid expires_at"]
        raise MalformedAnswerError(f"the temporary credentials from IAM lack {', '.join(missing)}", method="POST",
                                   url=str(response.request.url))  # fmt: skip
    return TemporaryCredential(fields["access"], fields["secret"], fields["security_token"],
                               expires.replace(tzinfo=expires.tzinfo or UTC).timestamp())  # fmt: skip


def _field(found: Any, names: tuple[str, ...]) -> Any:
    values = [found.get(name) for name in names] if isinstance(found, dict) else []
    return next((value for value in values if isinstance(value, str) and value), None)


class TemporaryObsAuth(httpx.Auth):
    """Sign OBS requests with temporary AK/SK that IAM gives for the login's token, and renew them in time.

    They are asked for inside the flow through ``login`` (the password login's auth, which logs in first when it
    must), so the same object serves the sync and the async client. A 403 ``InvalidAccessKeyId`` (the security
    token expired sooner than this machine's clock says) gets new credentials and one retry.

    Args:
        login: the IAM token auth that ``POST /v3.0/OS-CREDENTIAL/securitytokens`` is sent with.
        iam_base: the IAM endpoint.
        signature_type: ``obs`` or ``v2``, as ``ObsAuth``.
        signing_clock: the time OBS signatures are made at (default: the system clock).
        clock: POSIX seconds, to judge the expiry by (default: ``time.time``); injectable for tests.
        duration_seconds: how long each set is asked for.
    """

    requires_response_body = True

    def __init__(
        self,
        login: httpx.Auth,
        iam_base: str,
        *,
        signature_type: str = "obs",
        signing_clock: Clock | None = None,
        clock: Callable[[], float] = time.time,
        duration_seconds: int = DURATION_SECONDS,
    ) -> None:
        self._login = login
        self._iam_base = iam_base
        self.signature_type = signature_type
        self._signing_clock = signing_clock
        self.clock = clock
        self.duration_seconds = duration_seconds
        self.credential: TemporaryCredential | None = None

    def __repr__(self) -> str:
        return f"TemporaryObsAuth(credential={self.credential!r}, signature_type={self.signature_type!r})"

    def stale(self) -> bool:
        """No credentials yet, or they expire within ``REFRESH_MARGIN``."""
        credential = self.credential
        return credential is None or credential.expires_at - REFRESH_MARGIN <= self.clock()

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if self.stale():
            yield from self._renew()
        response = yield from self._signed(request)
        if _token_refused(response):
            log.info("OBS refused temporary AK %s before its expiry; asking IAM for new credentials", self._access)
            yield from self._renew()
            yield from self._signed(request)

    @property
    def _access(self) -> str | None:
        return None if self.credential is None else self.credential.access

    def _renew(self) -> Generator[httpx.Request, httpx.Response, None]:
        answer = yield from drive(self._login.auth_flow(securitytoken_request(self._iam_base, self.duration_seconds)))
        self.credential = parse_credential(answer)
        until = datetime.fromtimestamp(self.credential.expires_at, UTC).isoformat(timespec="seconds")
        log.info("temporary OBS credentials from IAM: AK %s, valid until %s", self.credential.access, until)

    def _signed(self, request: httpx.Request) -> Flow:
        credential = self.credential
        assert credential is not None
        auth = ObsAuth(credential.access, credential.secret, security_token=credential.security_token,
                       signature_type=self.signature_type, clock=self._signing_clock)  # fmt: skip
        return (yield from drive(auth.auth_flow(request)))


def drive(flow: Generator[httpx.Request, httpx.Response, None]) -> Flow:
    """Run another auth's flow inside this one (``yield from``); returns the last answer that flow was given."""
    request = next(flow)
    while True:
        response = yield request
        try:
            request = flow.send(response)
        except StopIteration:
            return response


def _token_refused(response: httpx.Response) -> bool:
    return response.status_code == 403 and wire.error_for(response).code == TOKEN_REFUSED_CODE
