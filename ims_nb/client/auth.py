"""httpx authentication flows: APIG AK/SK signing, IAM tokens and OBS signatures (no I/O here)."""

from __future__ import annotations

import time
from collections.abc import Callable, Generator
from datetime import UTC, datetime
from typing import Any

import httpx

from ims_nb import signing

Clock = Callable[[], datetime]

#: Headers the client signs when present; hop-by-hop headers are left out on purpose.
SIGNED_HEADERS = frozenset({"content-type", "host", "user-agent", "x-project-id", "x-sdk-date", "x-security-token"})


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _mask(secret: str | None) -> str:
    return "None" if secret is None else "'***'"


class AkSkAuth(httpx.Auth):
    """Sign each request with SDK-HMAC-SHA256, as the official Huawei SDK does.

    Args:
        access_key: the AK.
        secret_key: the SK (never shown in ``repr``).
        project_id: sent as ``X-Project-Id`` (regional services such as IMS) when given.
        security_token: temporary-credential token, sent as ``X-Security-Token``.
        clock: returns the current UTC time (default: the system clock); injectable for tests.
    """

    requires_request_body = True

    def __init__(
        self,
        access_key: str,
        secret_key: str,
        *,
        project_id: str | None = None,
        security_token: str | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.access_key = access_key
        self._secret_key = secret_key
        self.project_id = project_id
        self._security_token = security_token
        self._clock = clock or _utc_now

    def __repr__(self) -> str:
        return (
            f"AkSkAuth(access_key={self.access_key!r}, secret_key='***', "
            f"project_id={self.project_id!r}, security_token={_mask(self._security_token)})"
        )

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        headers = request.headers
        if self.project_id and "x-project-id" not in headers:
            headers["X-Project-Id"] = self.project_id
        if self._security_token:
            headers["X-Security-Token"] = self._security_token
        headers["X-Sdk-Date"] = signing.format_sdk_date(self._clock())
        to_sign = {name: value for name, value in headers.items() if name in SIGNED_HEADERS}
        query = signing.parse_query(request.url.query.decode("ascii"))
        headers["Authorization"] = signing.sign_request(
            access_key=self.access_key,
            secret_key=self._secret_key,
            method=request.method,
            path=request.url.raw_path.decode("ascii").split("?", 1)[0],  # as sent: decoded once by the signer
            query=query,
            headers=to_sign,
            body=request.content,
        )
        yield request


class TokenAuth(httpx.Auth):
    """Authenticate with an IAM token in ``X-Auth-Token`` (the token is never shown)."""

    def __init__(self, token: str, *, project_id: str | None = None) -> None:
        self._token = token
        self.project_id = project_id

    def __repr__(self) -> str:
        return f"TokenAuth(token='***', project_id={self.project_id!r})"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["X-Auth-Token"] = self._token
        if self.project_id and "x-project-id" not in request.headers:
            request.headers["X-Project-Id"] = self.project_id
        yield request


class ObsAuth(httpx.Auth):
    """Sign OBS requests (``OBS AK:sig``, or ``AWS AK:sig`` in V2 mode), path-style addressing.

    The first path segment is the bucket; the rest is the object key.
    """

    def __init__(
        self,
        access_key: str,
        secret_key: str,
        *,
        security_token: str | None = None,
        signature_type: str = "obs",
        clock: Clock | None = None,
    ) -> None:
        if signature_type not in signing.OBS_AUTH_PREFIX:
            raise ValueError(f"signature_type must be 'obs' or 'v2', not {signature_type!r}")
        self.access_key = access_key
        self._secret_key = secret_key
        self._security_token = security_token
        self.signature_type = signature_type
        self._clock = clock or _utc_now

    def __repr__(self) -> str:
        return f"ObsAuth(access_key={self.access_key!r}, secret_key='***', signature_type={self.signature_type!r})"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        prefix = signing.OBS_HEADER_PREFIX[self.signature_type]
        request.headers["Date"] = signing.obs_date(self._clock())
        if self._security_token:
            request.headers[prefix + "security-token"] = self._security_token
        bucket, _, key = request.url.path.lstrip("/").partition("/")  # httpx decodes .path
        sub = {name: (value or None) for name, value in request.url.params.multi_items()}
        resource = signing.obs_canonical_resource(
            bucket,
            key,
            sub,
            path_style=True,
            signature_type=self.signature_type,
        )
        to_sign = signing.obs_string_to_sign(
            request.method, dict(request.headers), resource, signature_type=self.signature_type
        )
        sig = signing.obs_signature(self._secret_key, to_sign)
        request.headers["Authorization"] = signing.obs_authorization(
            self.access_key, sig, signature_type=self.signature_type
        )
        yield request


class PasswordAuth(httpx.Auth):
    """IAM password login: fetch a project-scoped token, reuse it, and refresh it before it expires.

    The login request is made inside the flow (like digest auth), so the same object serves the sync
    and the async client. A 401 that says the token expired triggers one fresh login and one retry.
    """

    requires_response_body = True
    #: Refresh this long before the 24 h token expires.
    REFRESH_MARGIN = 3600.0

    def __init__(
        self,
        login: Callable[[], httpx.Request],
        parse: Callable[[httpx.Response], Any],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._login = login
        self._parse = parse
        self._clock = clock
        self._token: Any = None

    def __repr__(self) -> str:
        return f"PasswordAuth(token={'None' if self._token is None else repr(self._token)})"

    @property
    def project_id(self) -> str | None:
        return None if self._token is None else self._token.project_id

    def _stale(self) -> bool:
        token = self._token
        return token is None or token.expires_at - self.REFRESH_MARGIN <= self._clock()

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if self._stale():
            self._token = self._parse((yield self._login()))
        self._apply(request)
        response = yield request
        if response.status_code == 401 and _token_refused(response):
            self._token = self._parse((yield self._login()))
            self._apply(request)
            yield request

    def _apply(self, request: httpx.Request) -> None:
        request.headers["X-Auth-Token"] = self._token.value
        if self._token.project_id and "x-project-id" not in request.headers:
            request.headers["X-Project-Id"] = self._token.project_id


def _token_refused(response: httpx.Response) -> bool:
    try:
        code = response.json().get("error_code")
    except (ValueError, AttributeError):
        return False
    return code in ("APIGW.0307", "APIGW.0301")
