"""The client base: settings, request building, response parsing, retry decisions and paging (no I/O)."""

from __future__ import annotations

import logging
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

import httpx

from ims_nb.client import wire
from ims_nb.client.auth import AkSkAuth, ObsAuth, PasswordAuth
from ims_nb.client.config import Credentials, Endpoints, Password
from ims_nb.client.credentials import TemporaryObsAuth
from ims_nb.client.failures import certificate_problem, transport_error
from ims_nb.client.refusals import CredentialGuard
from ims_nb.client.retry import RETRY_STATUSES, RetryPolicy, never_sent, retry_after_seconds, retryable_transport
from ims_nb.errors import (
    ApiError,
    ConfigError,
    OutcomeUnknownError,
    ServerError,
    ThrottledError,
    TransportError,
    mask_secrets,
    register_secrets,
)
from ims_nb.vocab import Target

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger("ims_nb")
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
#: A password login answered 429 or 5xx inside the auth flow: retried like the request it serves.
LOGIN_RETRY_ERRORS = (ThrottledError, ServerError)
#: What a driver's send may fail with and still be decided on (see ``BaseImsClient._outcome``).
SEND_ERRORS: tuple[type[Exception], ...] = (httpx.RequestError, *LOGIN_RETRY_ERRORS)
#: A request's ``on_unknown``: the error to raise when its outcome cannot be known, from the reason.
OnUnknown = Callable[[str], Exception]


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
    #: Decided once, by ``connect``: the connection was made from a simulator's info (``--sim``, ``$IMS_NB_SIM``,
    #: an embedded simulator), so the simulator's rules, pacing and ledger apply. Explicit keys never set it.
    is_simulator: bool = False


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

    def share_guard(self, guard: CredentialGuard) -> None:
        """Screen answers with ``guard``, shared by several clients on one AK (an estate's): a refusal of the
        credentials seen by one stops them all, without a request more."""
        self._guard = guard

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
        if c is None:  # a password login: temporary AK/SK from IAM, one set per client, renewed before expiry
            return self._temporary_obs_auth
        return ObsAuth(c.ak, c.sk, security_token=c.security_token, clock=self.settings.signing_clock)

    @cached_property
    def _temporary_obs_auth(self) -> TemporaryObsAuth:
        return TemporaryObsAuth(self._auth, self.endpoints.iam, signing_clock=self.settings.signing_clock)

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
        """Retry GETs on transport errors, 429 and 5xx; a POST only when it provably never left (or got 429).

        A password login answered 429 or 5xx is retried whatever it served: the service acted on nothing.
        """
        elapsed = self.settings.clock() - started
        policy = self.settings.retry
        if isinstance(error, LOGIN_RETRY_ERRORS):
            delay = policy.delay(attempt, elapsed)
            return _Decision("fail") if delay is None else _Decision("retry", delay)
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

    def _outcome(
        self,
        request: httpx.Request,
        attempt: int,
        started: float,
        *,
        repeatable: bool,
        response: httpx.Response | None,
        error: Exception | None,
        on_unknown: OnUnknown | None,
    ) -> httpx.Response | float:
        """What one try comes to: the answer to return, or the seconds to sleep before the next try; else raises."""
        if response is not None:
            self._guard.screen(response)
        decision = self._decide(attempt, started, repeatable=repeatable, response=response, error=error)
        if decision.action == "retry":
            log.info("retrying %s %s in %.2f s (try %d)", request.method, request.url.path, decision.delay, attempt)
            return decision.delay
        if isinstance(error, ApiError):  # a password login still refused with 429/5xx when the tries ran out
            raise error
        if decision.action == "unknown" and on_unknown is not None:
            reason = repr(error) if error is not None else f"HTTP {response.status_code if response else '?'}"
            raise on_unknown(reason) from error
        if error is not None:
            raise self._transport_error(request, error) from error
        assert response is not None
        return response

    def _reread_delay(self, attempt: int, started: float, error: TransportError) -> float:
        """How long to wait before asking a safe GET again whose answer was unreadable; raises when out of tries."""
        delay = self.settings.retry.delay(attempt, self.settings.clock() - started)
        if delay is None:
            raise error
        log.info("unreadable answer to %s (%s); asking again in %.2f s (try %d)", error.url, error, delay, attempt)
        return delay

    def _transport_error(self, request: httpx.Request, error: Exception) -> TransportError:
        return transport_error(request, error, self._secrets)

    # --- request plans --------------------------------------------------------------------------

    def _page_request(self, filters: list[tuple[str, str]], marker: str | None, remaining: int | None) -> httpx.Request:
        limit = self.settings.page_size if remaining is None else min(self.settings.page_size, remaining)
        return wire.list_images_request(self.endpoints.ims, filters, marker, limit)

    @staticmethod
    def _page_done(page: list[dict[str, Any]], limit: int, remaining: int | None) -> bool:
        return len(page) < limit or (remaining is not None and remaining <= 0) or not page[-1].get("id")

    def _export_request(
        self, image_id: str, bucket_url: str | Target, file_format: str | None, quick: bool
    ) -> tuple[httpx.Request, dict[str, Any]]:
        body = wire.export_body(Target.parse(bucket_url), file_format, quick)
        return wire.export_request(self.endpoints.ims, image_id, body), body

    def _probe_request(self) -> httpx.Request:
        """The cheapest signed read: one private image."""
        return wire.list_images_request(self.endpoints.ims, [("__imagetype", "private")], None, 1)

    def _iam_request(self, path: str) -> httpx.Request:
        """A GET on the account's IAM endpoint (``path`` as the IAM API spells it, its values quoted)."""
        return httpx.Request("GET", wire.url(self.endpoints.iam, path), headers=wire.JSON_HEADERS)

    def _job_request(self, job_id: str) -> httpx.Request:
        if self.project_id is None:
            raise ConfigError("the project id is not known yet")
        return wire.job_request(self.endpoints.ims, self.project_id, job_id)

    def _set_project(self, project_id: str) -> None:
        if isinstance(self._auth, AkSkAuth):
            self._auth.project_id = project_id

    def _unknown(self, image_id: str, bucket_url: str | Target, reason: str) -> OutcomeUnknownError:
        error = OutcomeUnknownError(image_id, str(bucket_url), mask_secrets(reason, self._secrets))
        log.warning("%s", error)
        return error

    @staticmethod
    def _frame(records: list[dict[str, Any]], raw: bool) -> pd.DataFrame:
        from ims_nb.frames import images_frame

        return images_frame(records, raw=raw)

    # --- a simulator's control plane --------------------------------------------------------------

    def _control_http(self) -> httpx.Client:
        """The synchronous connection control-plane calls go through (each driver says which)."""
        raise NotImplementedError

    def simulator_clock(self, *, advance: float | None = None) -> dict[str, Any]:
        """A simulator's clock (``/_sim/clock``): ``now``, ``timestamp``, ``scale`` and ``manual``.

        One synchronous loopback call, on either driver. ``advance`` first moves the clock on by that many seconds.

        Raises:
            ConfigError: this client was not connected to a simulator (nothing is sent).
            TransportError, ApiError: the control plane could not be reached, or refused.
        """
        if not self.settings.is_simulator:
            raise ConfigError("only a simulator has a clock to read or move; this client is connected to an account")
        request = wire.clock_request(self.endpoints.ims, advance)
        try:
            response = self._control_http().send(request)
        except httpx.RequestError as exc:
            raise self._transport_error(request, exc) from exc
        return wire.parse_object(response)


def check_max_items(max_items: int | None) -> None:
    """ConfigError unless ``max_items`` is None or a non-negative integer."""
    if max_items is not None and (not isinstance(max_items, int) or max_items < 0):
        raise ConfigError(f"max_items must be a non-negative integer, not {max_items!r}")
