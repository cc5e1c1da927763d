"""``Estate``: the client's verbs over many regions and projects, with a status frame of the last call."""

from __future__ import annotations

import queue
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ims_nb.client.aio import AsyncImsClient
from ims_nb.client.sync import ImsClient
from ims_nb.errors import ConfigError, EstateWarning
from ims_nb.estate.fanout import FanOut, ScopeResult, run_sync
from ims_nb.estate.projects import Project
from ims_nb.vocab import SCOPE_COLUMNS, Scope

if TYPE_CHECKING:
    import pandas as pd

#: The columns of ``Estate.status``.
STATUS_COLUMNS = ("region", "project", "project_id", "images", "seconds", "error")
#: The columns of ``Estate.buckets()``: the estate region, and what the client knows of each bucket.
BUCKET_COLUMNS = ("region", "name", "location", "storage_class")
_DONE = object()


class Estate(Mapping[Scope, ImsClient]):
    """The regions and projects of one account as one unit; make one with ``ims_nb.connect_estate``.

    It is the mapping ``(region, project_id) -> client`` that ``preflight``, ``plan_exports``, ``review``,
    ``launch`` and ``watch`` take as ``client=`` for an estate frame: each row goes to its own scope's client.

    ``images()``, ``iter_images()`` and ``buckets()`` fan out over every scope at once (a per-region cap and
    rate); a scope that fails leaves its rows out, says so with an ``EstateWarning``, and ``status`` tells why.
    A refused AK stops every region and raises. ``clients`` holds a synchronous client per scope.
    """

    def __init__(self, fanout: FanOut, projects: Sequence[Project], *, simulator: Any = None) -> None:
        self._fanout = fanout
        self.projects = list(projects)
        self._simulator = simulator
        self._clients: dict[Scope, ImsClient] | None = None
        self._status = _status_frame([], "images")

    @property
    def regions(self) -> list[str]:
        return list(dict.fromkeys(p.region for p in self.projects))

    @property
    def scopes(self) -> list[Scope]:
        return [p.scope for p in self.projects]

    @property
    def is_simulator(self) -> bool:
        return any(s.is_simulator for s in self._fanout.settings.values())

    @property
    def owns_simulator(self) -> bool:
        """Whether this estate started the simulator it talks to (an embedded one; stopped by ``close``)."""
        return self._simulator is not None

    @property
    def secrets(self) -> tuple[str, ...]:
        """The SK (and security token) the estate signs with, for callers that must keep them out of output."""
        return tuple(s for c in self._fanout.settings.values() if c.credentials for s in c.credentials.secrets)

    def __repr__(self) -> str:
        names = ", ".join(p.name for p in self.projects)
        where = " (SIMULATOR)" if self.is_simulator else ""
        return f"Estate(regions={self.regions}, projects=[{names}], ak={self._fanout.guard.access_key!r}){where}"

    @property
    def clients(self) -> dict[Scope, ImsClient]:
        """A synchronous client per ``(region, project_id)``, made on first use with the estate's credentials."""
        if self._clients is None:
            self._clients = {}
            for project in self.projects:
                client = ImsClient(self._fanout.scope_settings(project))
                client.share_guard(self._fanout.guard)  # a refusal seen by one is known to all
                self._clients[project.scope] = client
        return self._clients

    def client_for(self, region: str, project_id: str) -> ImsClient:
        """The synchronous client of one scope.

        Raises:
            ConfigError: the estate does not cover that region and project.
        """
        try:
            return self.clients[(region, project_id)]
        except KeyError:
            raise ConfigError(f"the estate has no project {project_id!r} in region {region!r}") from None

    def __getitem__(self, scope: Scope) -> ImsClient:
        return self.clients[scope]

    def __iter__(self) -> Iterator[Scope]:
        return iter(self.scopes)

    def __len__(self) -> int:
        return len(self.projects)

    def project(self, region: str, project_id: str) -> Project:
        return next(p for p in self.projects if p.scope == (region, project_id))

    @property
    def status(self) -> pd.DataFrame:
        """The last call's outcome per scope: region, project (name), project_id, images, seconds, error."""
        return self._status.copy()

    def images(self, *, max_items: int | None = None, **filters: Any) -> pd.DataFrame:
        """Every scope's listing in one typed frame: ``client.images()``'s columns and dtypes after
        ``region``, ``project_id`` and ``project_name``; ``max_items`` caps each scope's listing.

        Raises:
            AuthError: the credentials were refused for good (nothing more was sent in any region).
        """

        async def listing(client: AsyncImsClient, project: Project) -> list[dict[str, Any]]:
            return [r async for r in client.iter_images(max_items=max_items, **filters)]

        results = self._run(self.projects, listing, "images")
        return images_with_scope([(r.project, r.value or []) for r in results])

    def iter_images(self, *, max_items: int | None = None, **filters: Any) -> Iterator[dict[str, Any]]:
        """Image records of every scope as they arrive (each with ``region``, ``project_id`` and
        ``project_name``); nothing is sent until iterated. Failed scopes end as in ``images()``."""
        found: queue.Queue[Any] = queue.Queue()

        async def listing(client: AsyncImsClient, project: Project) -> int:
            count = 0
            async for record in client.iter_images(max_items=max_items, **filters):
                found.put(record | dict(zip(SCOPE_COLUMNS, (project.region, project.id, project.name), strict=True)))
                count += 1
            return count

        def produce() -> None:
            try:
                self._run(self.projects, listing, "images")
            except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which raises it
                found.put(exc)
            found.put(_DONE)

        worker = threading.Thread(target=produce, name="ims-nb-estate", daemon=True)
        worker.start()
        while (item := found.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            yield item
        worker.join()

    def buckets(self) -> pd.DataFrame:
        """Each region's buckets (asked of the region's own project): ``BUCKET_COLUMNS``."""
        import pandas as pd

        first = list({p.region: p for p in reversed(self.projects)}.values())[::-1]

        async def listing(client: AsyncImsClient, project: Project) -> list[Any]:
            return await client.buckets()

        results = self._run(first, listing, "buckets")
        rows = [(r.project.region, b.name, b.region, b.storage_class) for r in results for b in r.value or []]
        frame = pd.DataFrame(rows, columns=list(BUCKET_COLUMNS))
        return frame.astype({c: "string" for c in ("region", "name")})

    def _run(
        self, projects: Sequence[Project], work: Callable[[AsyncImsClient, Project], Any], what: str
    ) -> list[ScopeResult[Any]]:
        results = run_sync(self._fanout.run(projects, work))
        self._status = _status_frame(results, what)
        failed = [r for r in results if r.error]
        if failed:
            named = "; ".join(f"{r.project.region}/{r.project.name}: {r.error}" for r in failed)
            warnings.warn(f"estate {what}: no rows from {named}", EstateWarning, stacklevel=3)
        return results

    def close(self) -> None:
        for client in (self._clients or {}).values():
            client.close()
        self._clients = None
        if self._simulator is not None:
            self._simulator.stop()
            self._simulator = None

    def __enter__(self) -> Estate:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def images_with_scope(listed: Sequence[tuple[Project, list[dict[str, Any]]]]) -> pd.DataFrame:
    """One typed frame of every scope's records, ``SCOPE_COLUMNS`` first (string dtype)."""
    import pandas as pd

    from ims_nb.frames import images_frame

    frame = images_frame([record for _, records in listed for record in records])
    for position, column in enumerate(SCOPE_COLUMNS):
        values = [getattr(p, attr) for p, records in listed for _ in records for attr in (_ATTRS[column],)]
        frame.insert(position, column, pd.array(values, dtype="string"))
    return frame


_ATTRS = {"region": "region", "project_id": "id", "project_name": "name"}


def _status_frame(results: Sequence[ScopeResult[Any]], what: str) -> pd.DataFrame:
    import pandas as pd

    rows = [
        (r.project.region, r.project.name, r.project.id,
         None if r.error else (len(r.value) if isinstance(r.value, list) else r.value),
         round(r.seconds, 3), r.error)
        for r in results
    ]  # fmt: skip
    frame = pd.DataFrame(rows, columns=list(STATUS_COLUMNS))
    frame = frame.astype({"region": "string", "project": "string", "project_id": "string", "images": "Int64",
                          "seconds": "float64", "error": "string"})  # fmt: skip
    if what != "images":
        frame = frame.rename(columns={"images": what})
    return frame
