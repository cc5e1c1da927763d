"""Estate frames in the data layer: each row's scope (region, project), the client that serves it, its lookups."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import pandas as pd  # type: ignore[import-untyped, unused-ignore]

from ims_nb.errors import ConfigError
from ims_nb.vocab import Scope

if TYPE_CHECKING:
    from typing import TypeAlias

    from ims_nb.client.protocol import LookupLike

    #: One client, or an estate's: ``(region, project_id)`` -> client.
    LookupsLike: TypeAlias = LookupLike | Mapping[Scope, LookupLike]

C = TypeVar("C")
#: The columns ``lookup_targets`` fills (bucket facts, target objects, running exports).
LOOKUP_COLUMNS = ("bucket_exists", "bucket_region", "bucket_class", "object_exists", "exporting", "exporting_job")


@dataclass(frozen=True)
class ScopeRows:
    """The rows of a plan in one region (one project, when an estate's clients are given), and their client."""

    positions: np.ndarray[Any, np.dtype[np.intp]]
    region: str | None
    client: Any  # the client of the rows' scope, None without clients


def scope_column(frame: pd.DataFrame, column: str, default: str | None) -> pd.Series:
    """A frame's ``region`` or ``project_id`` per row (an estate frame has them), else ``default`` for every row."""
    fallback = pd.Series(default, index=frame.index, dtype="string")
    if column not in frame.columns:
        return fallback
    return frame[column].astype("string").fillna(fallback)


def is_estate(client: Any) -> bool:
    """Whether ``client`` is an estate's clients (a mapping of ``(region, project_id)`` to a client)."""
    return isinstance(client, Mapping)


def single(client: LookupsLike | None) -> LookupLike | None:
    """The one client of a single-region call, None for an estate's clients (each row then finds its own)."""
    return None if isinstance(client, Mapping) else client


def client_for(clients: Mapping[Scope, C], scope: tuple[Any, Any]) -> C:
    """The client of one scope; ConfigError naming the scope when the estate has none for it."""
    region, project_id = ("?" if pd.isna(part) else str(part) for part in scope)
    found = clients.get((region, project_id))
    if found is None:
        known = ", ".join(f"{r}/{p}" for r, p in clients) or "none"
        raise ConfigError(f"no client for region {region}, project {project_id} (the estate's clients: {known})")
    return found


def scope_rows(plan: pd.DataFrame, client: Any) -> Iterator[ScopeRows]:
    """The plan's rows by region (and project, with an estate's clients), each group with its client.

    One client (or None) serves every row, as before estates; an estate's clients serve their own scope's rows.
    """
    keys = ["region", "project_id"] if is_estate(client) else ["region"]
    groups = plan.reset_index(drop=True).groupby(keys, dropna=False, sort=True).indices
    for key, positions in groups.items():
        parts = key if isinstance(key, tuple) else (key,)
        region = None if pd.isna(parts[0]) else str(parts[0])
        chosen = client_for(client, (parts[0], parts[1])) if is_estate(client) else client
        yield ScopeRows(np.asarray(positions, dtype=np.intp), region, chosen)


def lookup_scope(plan: pd.DataFrame, rows: ScopeRows) -> None:
    """``lookup_targets`` for one scope's rows, with the scope's client, written back into ``plan``."""
    if rows.client is None:
        return
    if len(rows.positions) == len(plan):
        lookup_targets(plan, rows.client)
        return
    part = plan.iloc[rows.positions].copy()
    lookup_targets(part, rows.client)
    for column in LOOKUP_COLUMNS:
        plan.loc[part.index, column] = part[column]


def lookup_targets(plan: pd.DataFrame, client: LookupLike) -> None:
    """Fill the bucket and object columns with one lookup per bucket and one per target object."""
    valid = plan["bucket_url_code"].isna()
    for name in plan.loc[valid, "bucket"].unique():
        info = client.bucket(name)
        rows = plan["bucket"] == name
        plan.loc[rows, "bucket_exists"] = info.exists
        plan.loc[rows, "bucket_region"] = info.region
        plan.loc[rows, "bucket_class"] = info.storage_class
    reachable = valid & plan["bucket_exists"].fillna(False).astype(bool)
    for (bucket, key), rows in plan[reachable].groupby(["bucket", "key"]).groups.items():
        plan.loc[rows, "object_exists"] = client.object_exists(bucket, key)
    running = getattr(client, "exports_in_progress", None)
    if running is not None:
        live = running()
        plan["exporting_job"] = plan["id"].map(live).astype("string")
        plan["exporting"] = plan["exporting_job"].notna()
