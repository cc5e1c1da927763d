"""The asynchronous driver: ``AsyncImsClient`` sends what the base plans over one ``httpx.AsyncClient``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar, overload

import httpx

from ims_nb.client import obs_listing, wire
from ims_nb.client.answers import object_parser
from ims_nb.client.base import SEND_ERRORS, BaseImsClient, ClientSettings, OnUnknown, check_max_items
from ims_nb.client.polling import ProgressCallback
from ims_nb.errors import ApiError, AuthError, MalformedAnswerError, TransportError
from ims_nb.vocab import Target

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger("ims_nb")
T = TypeVar("T")


class AsyncImsClient(BaseImsClient):
    """The asynchronous twin of ``ImsClient`` over one ``httpx.AsyncClient``."""

    def __init__(self, settings: ClientSettings, *, sleep: Callable[[float], Any] = asyncio.sleep) -> None:
        super().__init__(settings)
        self._sleep = sleep
        self._http = httpx.AsyncClient(timeout=settings.timeout, transport=settings.transport,
                                       verify=settings.verify)  # fmt: skip
        self._control: httpx.Client | None = None

    def _control_http(self) -> httpx.Client:
        """A small synchronous connection for control-plane calls, made on first use."""
        if self._control is None:
            self._control = httpx.Client(timeout=self.settings.timeout, verify=self.settings.verify)
        return self._control

    async def aclose(self) -> None:
        await self._http.aclose()
        if self._control is not None:
            self._control.close()
            self._control = None
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
        on_unknown: OnUnknown | None = None,
    ) -> httpx.Response:
        """Send with retries; until an answer proves the credentials, one request at a time (see ``refusals``)."""
        self._guard.check()
        if self._guard.confirmed:
            return await self._send_retrying(request, repeatable=repeatable, auth=auth, on_unknown=on_unknown)
        async with self._guard.async_lock:
            self._guard.check()
            return await self._send_retrying(request, repeatable=repeatable, auth=auth, on_unknown=on_unknown)

    async def _send_retrying(
        self, request: httpx.Request, *, repeatable: bool, auth: httpx.Auth | None, on_unknown: OnUnknown | None
    ) -> httpx.Response:
        started, attempt = self.settings.clock(), 0
        while True:
            attempt += 1
            response, error = None, None
            try:
                response = await self._http.send(request, auth=auth or self._auth)
            except AuthError as exc:  # an IAM password login, refused inside the auth flow
                raise self._guard.refuse(exc, login=True) from None
            except SEND_ERRORS as exc:  # transport, undecodable body, a login answered 429/5xx
                error = exc
            outcome = self._outcome(request, attempt, started, repeatable=repeatable, response=response,
                                    error=error, on_unknown=on_unknown)  # fmt: skip
            if isinstance(outcome, httpx.Response):
                return outcome
            await self._sleep(outcome)

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

    @overload
    async def iam_read(self, path: str) -> dict[str, Any]: ...
    @overload
    async def iam_read(self, path: str, parse: Callable[[dict[str, Any]], T]) -> T: ...
    async def iam_read(self, path: str, parse: Callable[[dict[str, Any]], Any] | None = None) -> Any:
        """A signed IAM read and its JSON object, or what ``parse`` makes of it (see ``ImsClient.iam_read``)."""
        return await self._read(self._iam_request(path), object_parser(parse))

    async def iter_images(self, *, max_items: int | None = None, **filters: Any) -> AsyncIterator[dict[str, Any]]:
        """Image records, fetched page by page as you iterate (see ``ImsClient.iter_images``)."""
        check_max_items(max_items)
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
        self, image_id: str, bucket_url: str | Target, file_format: str | None = None, quick: bool = False
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
        from ims_nb.client.pacing import Pacing
        from ims_nb.client.polling import wait_jobs_async

        return await wait_jobs_async(self, job_ids, timeout=timeout, on_progress=on_progress,
                                     pacing=Pacing(interval, max_interval), max_rate=max_rate,
                                     clock=clock or self.settings.clock, sleep=sleep or self._sleep)  # fmt: skip

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

    async def iter_objects(
        self, bucket: str, *, prefix: str = "", max_items: int | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """Object records of ``bucket`` under ``prefix``, page by page (see ``ImsClient.iter_objects``)."""
        check_max_items(max_items)
        marker, remaining = None, max_items
        while remaining is None or remaining > 0:
            request = obs_listing.list_objects_request(self.endpoints.obs, bucket, prefix, marker, remaining)
            page = await self._read(request, obs_listing.parse_objects_page, auth=self._obs_auth())
            for record in page.records[:remaining]:
                yield record
            remaining = None if remaining is None else remaining - len(page.records)
            if page.next_marker is None:
                return
            marker = page.next_marker

    async def objects(self, bucket: str, *, prefix: str = "", max_items: int | None = None) -> pd.DataFrame:
        """The objects of ``bucket`` under ``prefix`` as a typed DataFrame (``obs_listing.OBJECT_COLUMNS``)."""
        return obs_listing.objects_frame(
            [r async for r in self.iter_objects(bucket, prefix=prefix, max_items=max_items)]
        )
