"""What the data layer and the widgets need of a client: the protocols ``ClientLike`` and its narrower kin."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import pandas as pd

    from ims_nb.client.base import ClientSettings
    from ims_nb.client.config import Endpoints
    from ims_nb.client.polling import ProgressCallback
    from ims_nb.client.wire import BucketInfo
    from ims_nb.vocab import Target


class ConnectionLike(Protocol):
    """Where a client is connected, and as what: the facts both drivers share (no request is sent)."""

    @property
    def settings(self) -> ClientSettings:
        """The resolved connection; ``settings.is_simulator`` says whether it is a simulator's."""

    @property
    def region(self) -> str: ...

    @property
    def endpoints(self) -> Endpoints: ...

    @property
    def project_id(self) -> str | None: ...

    def simulator_clock(self, *, advance: float | None = None) -> dict[str, Any]:
        """A simulator's clock (one synchronous loopback call); a ``ConfigError`` on a real account."""


class BucketLike(Protocol):
    """What preflight reads of a bucket lookup (``exists`` None: not known, so no bucket rule fires)."""

    @property
    def exists(self) -> bool | None: ...

    @property
    def region(self) -> str | None: ...

    @property
    def storage_class(self) -> str | None: ...


class LookupLike(Protocol):
    """What preflight reads of a client: where it is, and the lookups of one round (image, bucket, object)."""

    @property
    def region(self) -> str | None: ...

    @property
    def project_id(self) -> str | None: ...

    def image(self, image_id: str) -> dict[str, Any]: ...

    def bucket(self, name: str) -> BucketLike: ...

    def object_exists(self, bucket: str, key: str) -> bool: ...


class ClientLike(ConnectionLike, Protocol):
    """A synchronous client as listings, preflight, plans, launches, watches and widgets use it (``ImsClient``)."""

    def check_credentials(self) -> None: ...

    def iter_images(self, *, max_items: int | None = None, **filters: Any) -> Iterator[dict[str, Any]]: ...

    def images(self, *, max_items: int | None = None, raw: bool = False, **filters: Any) -> pd.DataFrame: ...

    def image(self, image_id: str) -> dict[str, Any]: ...

    def export_image(
        self, image_id: str, bucket_url: str | Target, file_format: str | None = None, quick: bool = False
    ) -> str: ...

    def exports_in_progress(self) -> dict[str, str]: ...

    def job(self, job_id: str) -> dict[str, Any]: ...

    def job_progress(self, job_id: str) -> dict[str, Any]: ...

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
    ) -> dict[str, dict[str, Any]]: ...

    def bucket(self, name: str) -> BucketInfo: ...

    def object_exists(self, bucket: str, key: str) -> bool: ...

    def object_size(self, bucket: str, key: str) -> int | None: ...

    def buckets(self) -> list[BucketInfo]: ...

    def iter_objects(
        self, bucket: str, *, prefix: str = "", max_items: int | None = None
    ) -> Iterator[dict[str, Any]]: ...

    def objects(self, bucket: str, *, prefix: str = "", max_items: int | None = None) -> pd.DataFrame: ...

    def to_async(self) -> AsyncClientLike:
        """The async twin of this client, which the caller closes (an async client has no ``to_async``)."""


class AsyncClientLike(ConnectionLike, Protocol):
    """The asynchronous twin of ``ClientLike`` (``AsyncImsClient``): the same calls, awaited."""

    def check_credentials(self) -> Awaitable[None]: ...

    def iter_images(self, *, max_items: int | None = None, **filters: Any) -> AsyncIterator[dict[str, Any]]: ...

    def images(self, *, max_items: int | None = None, raw: bool = False, **filters: Any) -> Awaitable[pd.DataFrame]: ...

    def image(self, image_id: str) -> Awaitable[dict[str, Any]]: ...

    def export_image(
        self, image_id: str, bucket_url: str | Target, file_format: str | None = None, quick: bool = False
    ) -> Awaitable[str]: ...

    def job(self, job_id: str) -> Awaitable[dict[str, Any]]: ...

    def job_progress(self, job_id: str) -> Awaitable[dict[str, Any]]: ...

    def bucket(self, name: str) -> Awaitable[BucketInfo]: ...

    def object_exists(self, bucket: str, key: str) -> Awaitable[bool]: ...

    def object_size(self, bucket: str, key: str) -> Awaitable[int | None]: ...

    def buckets(self) -> Awaitable[list[BucketInfo]]: ...

    def iter_objects(
        self, bucket: str, *, prefix: str = "", max_items: int | None = None
    ) -> AsyncIterator[dict[str, Any]]: ...

    def objects(self, bucket: str, *, prefix: str = "", max_items: int | None = None) -> Awaitable[pd.DataFrame]: ...

    def aclose(self) -> Awaitable[None]: ...


if TYPE_CHECKING:  # mypy proves that each driver is what its protocol promises
    from ims_nb.client.aio import AsyncImsClient
    from ims_nb.client.sync import ImsClient

    _SYNC_DRIVER: type[ClientLike] = ImsClient
    _ASYNC_DRIVER: type[AsyncClientLike] = AsyncImsClient
