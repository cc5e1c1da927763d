"""The synchronous driver: ``ImsClient`` sends what the base plans over one ``httpx.Client``."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TypeVar, overload

import httpx

from ims_nb.client import obs_listing, wire
from ims_nb.client.aio import AsyncImsClient
from ims_nb.client.answers import object_parser
from ims_nb.client.base import SEND_ERRORS, BaseImsClient, ClientSettings, OnUnknown, check_max_items
from ims_nb.client.polling import ProgressCallback
from ims_nb.errors import ApiError, AuthError, ConfigError, MalformedAnswerError, TransportError
from ims_nb.vocab import TERMINAL_STATUSES, Target

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger("ims_nb")
T = TypeVar("T")


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

    def _control_http(self) -> httpx.Client:
        return self._http

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
        on_unknown: OnUnknown | None = None,
    ) -> httpx.Response:
        """Send with retries; until an answer proves the credentials, one request at a time (see ``refusals``)."""
        self._guard.check()
        if self._guard.confirmed:
            return self._send_retrying(request, repeatable=repeatable, auth=auth, on_unknown=on_unknown)
        with self._guard.lock:
            self._guard.check()
            return self._send_retrying(request, repeatable=repeatable, auth=auth, on_unknown=on_unknown)

    def _send_retrying(
        self, request: httpx.Request, *, repeatable: bool, auth: httpx.Auth | None, on_unknown: OnUnknown | None
    ) -> httpx.Response:
        started, attempt = self.settings.clock(), 0
        while True:
            attempt += 1
            response, error = None, None
            try:
                response = self._http.send(request, auth=auth or self._auth)
            except AuthError as exc:  # an IAM password login, refused inside the auth flow
                raise self._guard.refuse(exc, login=True) from None
            except SEND_ERRORS as exc:  # transport, undecodable body, a login answered 429/5xx
                error = exc
            outcome = self._outcome(request, attempt, started, repeatable=repeatable, response=response,
                                    error=error, on_unknown=on_unknown)  # fmt: skip
            if isinstance(outcome, httpx.Response):
                return outcome
            self._sleep(outcome)

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

    @overload
    def iam_read(self, path: str) -> dict[str, Any]: ...
    @overload
    def iam_read(self, path: str, parse: Callable[[dict[str, Any]], T]) -> T: ...
    def iam_read(self, path: str, parse: Callable[[dict[str, Any]], Any] | None = None) -> Any:
        """A signed IAM read and its JSON object, for lookups without a method of their own (who owns the AK).

        Args:
            parse: what to make of the object (default: the object itself); a ``MalformedAnswerError`` it raises
                (the object lacks what it must hold) has the read asked again, like a cut-off body.

        Raises:
            ApiError: the answer was an error (``AuthError`` on 401/403); TransportError: no answer.
        """
        return self._read(self._iam_request(path), object_parser(parse))

    # --- images -----------------------------------------------------------------------------------

    def iter_images(self, *, max_items: int | None = None, **filters: Any) -> Iterator[dict[str, Any]]:
        """Image records one by one, fetched page by page (marker paging) as you iterate.

        Args:
            max_items: stop after this many images.
            **filters: any documented listing filter, by the SDK's name (``imagetype``, ``platform``) or the
                wire name (``__imagetype``); booleans become ``true``/``false``.
        """
        check_max_items(max_items)
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

    def export_image(
        self, image_id: str, bucket_url: str | Target, file_format: str | None = None, quick: bool = False
    ) -> str:
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
        from ims_nb.client.pacing import Pacing
        from ims_nb.client.polling import wait_jobs

        return wait_jobs(self, job_ids, timeout=timeout, on_progress=on_progress, pacing=Pacing(interval, max_interval),
                         max_rate=max_rate, clock=clock or self.settings.clock, sleep=sleep or self._sleep)  # fmt: skip

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

    def iter_objects(self, bucket: str, *, prefix: str = "", max_items: int | None = None) -> Iterator[dict[str, Any]]:
        """Object records of ``bucket`` under ``prefix`` in key order, fetched page by page (1000 a page,
        following ``NextMarker``) as you iterate.

        Raises:
            ApiError: the bucket does not exist (``NoSuchBucket``) or the listing was refused.
        """
        check_max_items(max_items)
        marker, remaining = None, max_items
        while remaining is None or remaining > 0:
            request = obs_listing.list_objects_request(self.endpoints.obs, bucket, prefix, marker, remaining)
            page = self._read(request, obs_listing.parse_objects_page, auth=self._obs_auth())
            yield from page.records[:remaining]
            remaining = None if remaining is None else remaining - len(page.records)
            if page.next_marker is None:
                return
            marker = page.next_marker

    def objects(self, bucket: str, *, prefix: str = "", max_items: int | None = None) -> pd.DataFrame:
        """The objects of ``bucket`` under ``prefix`` as a typed DataFrame (``obs_listing.OBJECT_COLUMNS``)."""
        return obs_listing.objects_frame(self.iter_objects(bucket, prefix=prefix, max_items=max_items))
