"""The IMS/OBS clients: one base decides (requests, parsing, errors, paging, retries); two thin I/O drivers."""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

import httpx

from ims_nb.client import wire
from ims_nb.client.auth import AkSkAuth, ObsAuth, PasswordAuth
from ims_nb.client.config import Credentials, Endpoints, Password
from ims_nb.client.polling import PollPlan, ProgressCallback
from ims_nb.client.refusals import CredentialGuard
from ims_nb.client.retry import RETRY_STATUSES, RetryPolicy, never_sent, retry_after_seconds, retryable_transport
from ims_nb.errors import (
    ApiError,
    AuthError,
    ConfigError,
    MalformedAnswerError,
    OutcomeUnknownError,
    TransportError,
    WaitTimeoutError,
    mask_secrets,
    register_secrets,
)
from ims_nb.vocab import TERMINAL_STATUSES

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger("ims_nb")
T = TypeVar("T")
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)


@dataclass
class ClientSettings:
    """Everything a client needs, resolved by ``connect``."""

    region: str
    endpoints: Endpoints
    credentials: Credentials | None = None
    password: Password | None = None
    simulator: Any = None  # a running embedded simulator the client owns and stops on close
    timeout: httpx.Timeout = field(default_factory=lambda: DEFAULT_TIMEOUT)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    transport: Any = None
    page_size: int = wire.MAX_PAGE
    clock: Callable[[], float] = time.monotonic
    announced: bool = False  # the SIMULATOR warning was logged for these settings
    verify: ssl.SSLContext | bool = True  # False only through connect(insecure=True)
    signing_clock: Callable[[], datetime] | None = None  # the time signatures are made at (tests inject a skew)

    @property
    def is_simulator(self) -> bool:
        return self.credentials is not None and self.credentials.source == "simulator"


@dataclass(frozen=True)
class _Decision:
    """What to do after one try: ``return`` the answer, ``retry`` after ``delay``, ``fail``, or ``unknown``."""

    action: str
    delay: float = 0.0


class BaseImsClient:
    """Request building, response parsing, error mapping, paging and retry decisions; no I/O."""

    def __init__(self, settings: ClientSettings) -> None:
        if not 1 <= settings.page_size <= wire.MAX_PAGE:
            raise ConfigError(f"page_size must be 1 to {wire.MAX_PAGE}, not {settings.page_size}")
        self.settings = settings
        self.region = settings.region
        self.endpoints = settings.endpoints
        self._auth = self._make_auth()
        self._guard = CredentialGuard(settings.credentials.ak if settings.credentials else None)
        self._buckets: dict[str, wire.BucketInfo] = {}
        self._exports: dict[str, str] = {}  # image id -> job id of the exports this client started
        register_secrets(*self._secrets)
        if settings.is_simulator and not settings.announced:  # once per connect(), not again for to_async()
            kind = "an embedded simulator" if settings.simulator is not None else "the simulator"
            log.warning("SIMULATOR: ims-nb is talking to %s at %s", kind, self.endpoints.ims)
            settings.announced = True

    def _make_auth(self) -> httpx.Auth:
        settings = self.settings
        if settings.password is not None:
            pw = settings.password
            return PasswordAuth(
                lambda: wire.token_request(self.endpoints.iam, pw.username, pw.password, pw.domain, self.region),
                wire.parse_token,
            )
        if settings.credentials is None:
            raise ConfigError("no credentials: give ak/sk, a password login, or use the simulator")
        c = settings.credentials
        return AkSkAuth(c.ak, c.sk, project_id=c.project_id, security_token=c.security_token,
                        clock=settings.signing_clock)  # fmt: skip

    def _obs_auth(self) -> httpx.Auth:
        c = self.settings.credentials
        if c is None:
            raise ConfigError("OBS calls need AK/SK credentials (a password login has none)")
        return ObsAuth(c.ak, c.sk, security_token=c.security_token, clock=self.settings.signing_clock)

    @property
    def project_id(self) -> str | None:
        return getattr(self._auth, "project_id", None)

    @property
    def _secrets(self) -> tuple[str, ...]:
        c, p = self.settings.credentials, self.settings.password
        return (c.secrets if c else ()) + ((p.password,) if p else ())

    def __repr__(self) -> str:
        settings = self.settings
        who = str(settings.credentials) if settings.credentials else f"password login as {settings.password}"
        flag = ", SIMULATOR" if settings.is_simulator else ""
        return f"{type(self).__name__}(region={self.region!r}, endpoint={self.endpoints.ims!r}, {who}{flag})"

    # --- decisions ----------------------------------------------------------------------------

    def _decide(
        self,
        attempt: int,
        started: float,
        *,
        repeatable: bool,
        response: httpx.Response | None = None,
        error: Exception | None = None,
    ) -> _Decision:
        """Retry GETs on transport errors, 429 and 5xx; a POST only when it provably never left (or got 429)."""
        elapsed = self.settings.clock() - started
        policy = self.settings.retry
        if error is not None:
            if not isinstance(error, httpx.TransportError):  # e.g. an undecodable body: answered, but unreadable
                return _Decision("fail" if repeatable else "unknown")
            if certificate_problem(error) is not None:  # no retry mends a certificate; nothing was sent
                return _Decision("fail")
            if repeatable and retryable_transport(error) or never_sent(error):
                delay = policy.delay(attempt, elapsed)
                return _Decision("fail") if delay is None else _Decision("retry", delay)
            return _Decision("unknown")
        assert response is not None
        status = response.status_code
        if status in RETRY_STATUSES and (repeatable or status == 429):
            delay = policy.delay(attempt, elapsed, retry_after_seconds(response))
            return _Decision("return") if delay is None else _Decision("retry", delay)
        if status >= 500 and not repeatable:
            return _Decision("unknown")
        return _Decision("return")

    def _reread_delay(self, attempt: int, started: float, error: TransportError) -> float:
        """How long to wait before asking a safe GET again whose answer was unreadable; raises when out of tries."""
        delay = self.settings.retry.delay(attempt, self.settings.clock() - started)
        if delay is None:
            raise error
        log.info("unreadable answer to %s (%s); asking again in %.2f s (try %d)", error.url, error, delay, attempt)
        return delay

    def _transport_error(self, request: httpx.Request, error: Exception) -> TransportError:
        message = f"{type(error).__name__} on {request.method} {request.url.path}: {error}"
        problem = certificate_problem(error)
        if problem is not None:
            message = (f"the TLS certificate of {request.url.host} could not be verified ({problem}); give "
                       "ca_bundle=PATH (CLI --ca-bundle) for a private CA, or insecure=True (--insecure) to skip "
                       "the check")  # fmt: skip
        message = mask_secrets(message, self._secrets)
        return TransportError(
            message, method=request.method, url=str(request.url.copy_with(query=None)), sent=not never_sent(error)
        )

    # --- request plans --------------------------------------------------------------------------

    def _page_request(self, filters: list[tuple[str, str]], marker: str | None, remaining: int | None) -> httpx.Request:
        limit = self.settings.page_size if remaining is None else min(self.settings.page_size, remaining)
        return wire.list_images_request(self.endpoints.ims, filters, marker, limit)

    @staticmethod
    def _page_done(page: list[dict[str, Any]], limit: int, remaining: int | None) -> bool:
        return len(page) < limit or (remaining is not None and remaining <= 0) or not page[-1].get("id")

    def _export_request(
        self, image_id: str, bucket_url: str, file_format: str | None, quick: bool
    ) -> tuple[httpx.Request, dict[str, Any]]:
        body = wire.export_body(bucket_url, file_format, quick)
        return wire.export_request(self.endpoints.ims, image_id, body), body

    def _probe_request(self) -> httpx.Request:
        """The cheapest signed read: one private image."""
        return wire.list_images_request(self.endpoints.ims, [("__imagetype", "private")], None, 1)

    def _job_request(self, job_id: str) -> httpx.Request:
        if self.project_id is None:
            raise ConfigError("the project id is not known yet")
        return wire.job_request(self.endpoints.ims, self.project_id, job_id)

    def _set_project(self, project_id: str) -> None:
        if isinstance(self._auth, AkSkAuth):
            self._auth.project_id = project_id

    def _unknown(self, image_id: str, bucket_url: str, reason: str) -> OutcomeUnknownError:
        error = OutcomeUnknownError(image_id, bucket_url, mask_secrets(reason, self._secrets))
        log.warning("%s", error)
        return error

    @staticmethod
    def _frame(records: list[dict[str, Any]], raw: bool) -> pd.DataFrame:
        from ims_nb.frames import images_frame

        return images_frame(records, raw=raw)


def certificate_problem(error: BaseException) -> str | None:
    """The reason when ``error`` (or what it wraps) is a failed TLS certificate verification, else None."""
    seen: BaseException | None = error
    for _ in range(8):
        if seen is None:
            return None
        if isinstance(seen, ssl.SSLCertVerificationError):
            return seen.verify_message or str(seen)
        seen = seen.__cause__ or seen.__context__
    return None


def _check_max_items(max_items: int | None) -> None:
    if max_items is not None and (not isinstance(max_items, int) or max_items < 0):
        raise ConfigError(f"max_items must be a non-negative integer, not {max_items!r}")


class ImsClient(BaseImsClient):
    """A synchronous client over one ``httpx.Client`` (one connection pool).

    Use ``ims_nb.connect()`` to make one; close it (or use ``with``) when done.
    """

    def __init__(self, settings: ClientSettings, *, sleep: Callable[[float], None] = time.sleep) -> None:
        super().__init__(settings)
        self._sleep = sleep
        self._http = httpx.Client(timeout=settings.timeout, transport=settings.transport, verify=settings.verify)

    def close(self) -> None:
        self._http.close()
        if self.settings.simulator is not None:
            self.settings.simulator.stop()
            self.settings.simulator = None

    def to_async(self) -> AsyncImsClient:
        """An ``AsyncImsClient`` with this client's endpoints, credentials and retry policy (for asyncio tasks).

        This client keeps owning an embedded simulator: close the async one first, or just let it go. Credentials
        this client saw refused for good are not sent again by the async one either.

        Raises:
            ConfigError: this client was given a synchronous-only ``transport``, which an async client cannot use.
        """
        transport = self.settings.transport
        if transport is not None and not isinstance(transport, httpx.AsyncBaseTransport):
            raise ConfigError(f"this client's transport ({type(transport).__name__}) is synchronous only; "
                              "make the async client with connect_async(transport=...) instead")  # fmt: skip
        twin = AsyncImsClient(replace(self.settings, simulator=None))
        twin._guard.inherit(self._guard)  # credentials refused here are refused there, unsent
        return twin

    def __enter__(self) -> ImsClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _send(
        self,
        request: httpx.Request,
        *,
        repeatable: bool = True,
        auth: httpx.Auth | None = None,
        on_unknown: Callable[[str], Exception] | None = None,
    ) -> httpx.Response:
        """Send with retries; until an answer proves the credentials, one request at a time (see ``refusals``)."""
        self._guard.check()
        if self._guard.confirmed:
            return self._send_retrying(request, repeatable=repeatable, auth=auth, on_unknown=on_unknown)
        with self._guard.lock:
            self._guard.check()
            return self._send_retrying(request, repeatable=repeatable, auth=auth, on_unknown=on_unknown)

    def _send_retrying(
        self,
        request: httpx.Request,
        *,
        repeatable: bool,
        auth: httpx.Auth | None,
        on_unknown: Callable[[str], Exception] | None,
    ) -> httpx.Response:
        started, attempt = self.settings.clock(), 0
        while True:
            attempt += 1
            response, error = None, None
            try:
                response = self._http.send(request, auth=auth or self._auth)
            except httpx.RequestError as exc:  # TransportError, and DecodingError (a body that cannot be decoded)
                error = exc
            except AuthError as exc:  # an IAM password login, refused inside the auth flow
                raise self._guard.refuse(exc, login=True) from None
            if response is not None:
                self._guard.screen(response)
            decision = self._decide(attempt, started, repeatable=repeatable, response=response, error=error)
            if decision.action == "return" and response is not None:
                return response
            if decision.action == "retry":
                log.info("retrying %s %s in %.2f s (try %d)", request.method, request.url.path, decision.delay, attempt)
                self._sleep(decision.delay)
                continue
            reason = repr(error) if error is not None else f"HTTP {response.status_code if response else '?'}"
            if decision.action == "unknown" and on_unknown is not None:
                raise on_unknown(reason) from error
            if error is not None:
                raise self._transport_error(request, error) from error
            assert response is not None
            return response

    def _read(self, request: httpx.Request, parse: Callable[[httpx.Response], T], auth: httpx.Auth | None = None) -> T:
        """A safe GET and its parsed answer; an unreadable answer (a cut-off or malformed body) is asked again."""
        started, attempt = self.settings.clock(), 0
        while True:
            attempt += 1
            try:
                return parse(self._send(request, auth=auth))
            except MalformedAnswerError as exc:
                self._sleep(self._reread_delay(attempt, started, exc))

    def _ensure_project(self) -> str:
        if self.project_id is None:
            response = self._send(wire.projects_request(self.endpoints.iam, self.region))
            self._set_project(wire.parse_project_id(response, self.region))
        assert self.project_id is not None
        return self.project_id

    def check_credentials(self) -> None:
        """Prove the credentials with one cheap signed read, unless an answer did already (``launch`` calls it
        before it claims any ledger row). Only a refusal raises: an outage is left to the calls that follow.

        Raises:
            AuthError: the service refused the credentials.
        """
        if self._guard.confirmed:
            return
        try:
            self._ensure_project()
            if not self._guard.confirmed:
                self._send(self._probe_request())
        except AuthError:
            raise
        except (ApiError, TransportError) as exc:
            log.info("the credentials check got no verdict (%s); going on", exc)

    # --- images -----------------------------------------------------------------------------------

    def iter_images(self, *, max_items: int | None = None, **filters: Any) -> Iterator[dict[str, Any]]:
        """Image records one by one, fetched page by page (marker paging) as you iterate.

        Args:
            max_items: stop after this many images.
            **filters: any documented listing filter, by the SDK's name (``imagetype``, ``platform``) or the
                wire name (``__imagetype``); booleans become ``true``/``false``.
        """
        _check_max_items(max_items)
        pairs = wire.wire_filters(filters)
        self._ensure_project()
        marker, remaining = None, max_items
        while remaining is None or remaining > 0:
            request = self._page_request(pairs, marker, remaining)
            page = self._read(request, wire.parse_images_page)
            limit = int(request.url.params["limit"])
            yield from page[: remaining if remaining is not None else None]
            remaining = None if remaining is None else remaining - len(page)
            if self._page_done(page, limit, remaining):
                return
            marker = page[-1]["id"]

    def images(self, *, max_items: int | None = None, raw: bool = False, **filters: Any) -> pd.DataFrame:
        """The listing as a typed DataFrame (one row per image); ``raw=True`` keeps each record."""
        return self._frame(list(self.iter_images(max_items=max_items, **filters)), raw)

    def image(self, image_id: str) -> dict[str, Any]:
        """One image record (``GET /v2/images/{id}``)."""
        self._ensure_project()
        return self._read(wire.show_image_request(self.endpoints.ims, image_id), wire.parse_object)

    # --- exports and jobs -------------------------------------------------------------------------

    def export_image(self, image_id: str, bucket_url: str, file_format: str | None = None, quick: bool = False) -> str:
        """Start an export; returns its job id.

        Raises:
            OutcomeUnknownError: the request was sent but its answer was lost; the job may exist.
            ApiError: the service refused the export (``IMG.xxxx``).
        """
        self._ensure_project()
        request, _ = self._export_request(image_id, bucket_url, file_format, quick)
        response = self._send(
            request, repeatable=False, on_unknown=lambda reason: self._unknown(image_id, bucket_url, reason)
        )
        try:
            job_id = wire.parse_job_id(response)
        except TransportError as exc:  # a 2xx answer without a readable job id: the job may well exist
            raise self._unknown(image_id, bucket_url, str(exc)) from exc
        self._exports[image_id] = job_id
        return job_id

    def exports_in_progress(self) -> dict[str, str]:
        """Image id -> job id of the exports this client started that are still INIT or RUNNING.

        The API cannot list jobs, so only exports started through this client are known here.
        """
        for image_id, job_id in list(self._exports.items()):
            if self.job_progress(job_id).get("status") in TERMINAL_STATUSES:
                del self._exports[image_id]
        return dict(self._exports)

    def job(self, job_id: str) -> dict[str, Any]:
        """The job record (``GET /v1/{project_id}/jobs/{job_id}``)."""
        self._ensure_project()
        return self._read(self._job_request(job_id), wire.parse_object)

    def job_progress(self, job_id: str) -> dict[str, Any]:
        """The job record with ``entities.process_percent`` (``GET /v1/cloudimages/job/{job_id}``)."""
        self._ensure_project()
        return self._read(wire.job_progress_request(self.endpoints.ims, job_id), wire.parse_object)

    def wait(
        self,
        job_ids: Iterable[str],
        *,
        timeout: float | None = 3600.0,
        on_progress: ProgressCallback | None = None,
        interval: float = 5.0,
        max_interval: float = 60.0,
        max_rate: float = 5.0,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> dict[str, dict[str, Any]]:
        """Poll jobs until each is SUCCESS or FAIL; returns the last record of each.

        One connection pool for all jobs; a job whose progress stands still is polled less often (up to
        ``max_interval``); all polls together stay under ``max_rate`` requests per second.

        Raises:
            WaitTimeoutError: ``timeout`` seconds passed with jobs still running (they go on remotely).
        """
        from ims_nb.client.retry import RateLimiter

        clock, sleep = clock or self.settings.clock, sleep or self._sleep
        plan = PollPlan(list(job_ids), clock(), interval, max_interval, timeout)
        limiter = RateLimiter(max_rate, clock=clock)
        while not plan.done:
            now = clock()
            if plan.expired(now):
                raise WaitTimeoutError(timeout or 0.0, plan.records, plan.live)
            due = plan.due(now)
            if not due:
                gap = plan.next_due() - now
                sleep(gap if plan.deadline is None else max(0.0, min(gap, plan.deadline - now)))
                continue
            for job_id in due:
                sleep(limiter.reserve())
                record = self.job_progress(job_id)
                plan.observe(job_id, record, clock())
                if on_progress is not None:
                    on_progress(job_id, record)
        return plan.records

    # --- OBS --------------------------------------------------------------------------------------

    def bucket(self, name: str) -> wire.BucketInfo:
        """Region, storage class and existence of a bucket (looked up once per client)."""
        if name not in self._buckets:
            response = self._send(wire.bucket_request(self.endpoints.obs, name), auth=self._obs_auth())
            self._buckets[name] = wire.parse_bucket(name, response)
        return self._buckets[name]

    def object_exists(self, bucket: str, key: str) -> bool:
        """Whether ``bucket`` holds ``key`` right now (not cached: exports create objects)."""
        return self.object_size(bucket, key) is not None

    def object_size(self, bucket: str, key: str) -> int | None:
        """The size of an object in bytes, or None when it does not exist."""
        response = self._send(wire.object_request(self.endpoints.obs, bucket, key), auth=self._obs_auth())
        return wire.parse_object_size(response)

    def buckets(self) -> list[wire.BucketInfo]:
        """Every bucket of the account with its region (storage classes via ``bucket(name)``)."""
        return self._read(wire.list_buckets_request(self.endpoints.obs), wire.parse_buckets, auth=self._obs_auth())


class AsyncImsClient(BaseImsClient):
    """The asynchronous twin of ``ImsClient`` over one ``httpx.AsyncClient``."""

    def __init__(self, settings: ClientSettings, *, sleep: Callable[[float], Any] = asyncio.sleep) -> None:
        super().__init__(settings)
        self._sleep = sleep
        self._http = httpx.AsyncClient(timeout=settings.timeout, transport=settings.transport,
                                       verify=settings.verify)  # fmt: skip

    async def aclose(self) -> None:
        await self._http.aclose()
        if self.settings.simulator is not None:
            self.settings.simulator.stop()
            self.settings.simulator = None

    async def __aenter__(self) -> AsyncImsClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def _read(
        self, request: httpx.Request, parse: Callable[[httpx.Response], T], auth: httpx.Auth | None = None
    ) -> T:
        started, attempt = self.settings.clock(), 0
        while True:
            attempt += 1
            try:
                return parse(await self._send(request, auth=auth))
            except MalformedAnswerError as exc:
                await self._sleep(self._reread_delay(attempt, started, exc))

    async def _send(
        self,
        request: httpx.Request,
        *,
        repeatable: bool = True,
        auth: httpx.Auth | None = None,
        on_unknown: Callable[[str], Exception] | None = None,
    ) -> httpx.Response:
        """Send with retries; until an answer proves the credentials, one request at a time (see ``refusals``)."""
        self._guard.check()
        if self._guard.confirmed:
            return await self._send_retrying(request, repeatable=repeatable, auth=auth, on_unknown=on_unknown)
        async with self._guard.async_lock:
            self._guard.check()
            return await self._send_retrying(request, repeatable=repeatable, auth=auth, on_unknown=on_unknown)

    async def _send_retrying(
        self,
        request: httpx.Request,
        *,
        repeatable: bool,
        auth: httpx.Auth | None,
        on_unknown: Callable[[str], Exception] | None,
    ) -> httpx.Response:
        started, attempt = self.settings.clock(), 0
        while True:
            attempt += 1
            response, error = None, None
            try:
                response = await self._http.send(request, auth=auth or self._auth)
            except httpx.RequestError as exc:  # TransportError, and DecodingError (a body that cannot be decoded)
                error = exc
            except AuthError as exc:  # an IAM password login, refused inside the auth flow
                raise self._guard.refuse(exc, login=True) from None
            if response is not None:
                self._guard.screen(response)
            decision = self._decide(attempt, started, repeatable=repeatable, response=response, error=error)
            if decision.action == "return" and response is not None:
                return response
            if decision.action == "retry":
                log.info("retrying %s %s in %.2f s (try %d)", request.method, request.url.path, decision.delay, attempt)
                await self._sleep(decision.delay)
                continue
            reason = repr(error) if error is not None else f"HTTP {response.status_code if response else '?'}"
            if decision.action == "unknown" and on_unknown is not None:
                raise on_unknown(reason) from error
            if error is not None:
                raise self._transport_error(request, error) from error
            assert response is not None
            return response

    async def _ensure_project(self) -> str:
        if self.project_id is None:
            response = await self._send(wire.projects_request(self.endpoints.iam, self.region))
            self._set_project(wire.parse_project_id(response, self.region))
        assert self.project_id is not None
        return self.project_id

    async def check_credentials(self) -> None:
        """Prove the credentials with one cheap signed read, unless an answer did already (see ``ImsClient``)."""
        if self._guard.confirmed:
            return
        try:
            await self._ensure_project()
            if not self._guard.confirmed:
                await self._send(self._probe_request())
        except AuthError:
            raise
        except (ApiError, TransportError) as exc:
            log.info("the credentials check got no verdict (%s); going on", exc)

    async def iter_images(self, *, max_items: int | None = None, **filters: Any) -> AsyncIterator[dict[str, Any]]:
        """Image records, fetched page by page as you iterate (see ``ImsClient.iter_images``)."""
        _check_max_items(max_items)
        pairs = wire.wire_filters(filters)
        await self._ensure_project()
        marker, remaining = None, max_items
        while remaining is None or remaining > 0:
            request = self._page_request(pairs, marker, remaining)
            page = await self._read(request, wire.parse_images_page)
            limit = int(request.url.params["limit"])
            for record in page[: remaining if remaining is not None else None]:
                yield record
            remaining = None if remaining is None else remaining - len(page)
            if self._page_done(page, limit, remaining):
                return
            marker = page[-1]["id"]

    async def images(self, *, max_items: int | None = None, raw: bool = False, **filters: Any) -> pd.DataFrame:
        """The listing as a typed DataFrame (see ``ImsClient.images``)."""
        return self._frame([r async for r in self.iter_images(max_items=max_items, **filters)], raw)

    async def image(self, image_id: str) -> dict[str, Any]:
        await self._ensure_project()
        return await self._read(wire.show_image_request(self.endpoints.ims, image_id), wire.parse_object)

    async def export_image(
        self, image_id: str, bucket_url: str, file_format: str | None = None, quick: bool = False
    ) -> str:
        """Start an export; returns its job id (see ``ImsClient.export_image``)."""
        await self._ensure_project()
        request, _ = self._export_request(image_id, bucket_url, file_format, quick)
        response = await self._send(
            request, repeatable=False, on_unknown=lambda reason: self._unknown(image_id, bucket_url, reason)
        )
        try:
            return wire.parse_job_id(response)
        except TransportError as exc:  # a 2xx answer without a readable job id: the job may well exist
            raise self._unknown(image_id, bucket_url, str(exc)) from exc

    async def job(self, job_id: str) -> dict[str, Any]:
        await self._ensure_project()
        return await self._read(self._job_request(job_id), wire.parse_object)

    async def job_progress(self, job_id: str) -> dict[str, Any]:
        await self._ensure_project()
        return await self._read(wire.job_progress_request(self.endpoints.ims, job_id), wire.parse_object)

    async def wait(
        self,
        job_ids: Iterable[str],
        *,
        timeout: float | None = 3600.0,
        on_progress: ProgressCallback | None = None,
        interval: float = 5.0,
        max_interval: float = 60.0,
        max_rate: float = 5.0,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], Any] | None = None,
    ) -> dict[str, dict[str, Any]]:
        """Poll jobs concurrently until each ends (see ``ImsClient.wait``)."""
        from ims_nb.client.retry import RateLimiter

        clock, sleep = clock or self.settings.clock, sleep or self._sleep
        plan = PollPlan(list(job_ids), clock(), interval, max_interval, timeout)
        limiter = RateLimiter(max_rate, clock=clock)

        async def poll(job_id: str) -> None:
            await sleep(limiter.reserve())
            record = await self.job_progress(job_id)
            plan.observe(job_id, record, clock())
            if on_progress is not None:
                on_progress(job_id, record)

        while not plan.done:
            now = clock()
            if plan.expired(now):
                raise WaitTimeoutError(timeout or 0.0, plan.records, plan.live)
            due = plan.due(now)
            if not due:
                gap = plan.next_due() - now
                await sleep(gap if plan.deadline is None else max(0.0, min(gap, plan.deadline - now)))
                continue
            await asyncio.gather(*(poll(job_id) for job_id in due))
        return plan.records

    async def bucket(self, name: str) -> wire.BucketInfo:
        if name not in self._buckets:
            response = await self._send(wire.bucket_request(self.endpoints.obs, name), auth=self._obs_auth())
            self._buckets[name] = wire.parse_bucket(name, response)
        return self._buckets[name]

    async def object_exists(self, bucket: str, key: str) -> bool:
        return await self.object_size(bucket, key) is not None

    async def object_size(self, bucket: str, key: str) -> int | None:
        response = await self._send(wire.object_request(self.endpoints.obs, bucket, key), auth=self._obs_auth())
        return wire.parse_object_size(response)

    async def buckets(self) -> list[wire.BucketInfo]:
        return await self._read(wire.list_buckets_request(self.endpoints.obs), wire.parse_buckets,
                                auth=self._obs_auth())  # fmt: skip
