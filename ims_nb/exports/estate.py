"""Launches and watches over an estate: each plan row sent to, and each ledger row followed at, its scope's client.

An estate's clients are a ``Mapping[Scope, ClientLike]`` keyed by ``(region, project_id)``. Each scope is one
account identity to the ledger (its endpoint and project: ``Ledger.bound_to``), so each scope's rows are
claimed, reconciled and watched through that scope's own client, with the single-region code unchanged: the
exactly-once rules hold per scope, and a doubtful row is looked up at its own region's endpoint. The scopes
run side by side (one thread each, every scope with its own concurrency cap and rate limit).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

import pandas as pd  # type: ignore[import-untyped, unused-ignore]

from ims_nb.errors import ConfigError
from ims_nb.exports.identity import ELSEWHERE
from ims_nb.exports.schema import COLUMNS
from ims_nb.targets import client_for
from ims_nb.vocab import SCOPE_KEY, Scope

if TYPE_CHECKING:
    from ims_nb.client.protocol import ClientLike
    from ims_nb.exports.ledger import Ledger

T = TypeVar("T")
#: The plan columns that name a row's scope.


def plan_scopes(plan: pd.DataFrame, clients: Mapping[Scope, ClientLike]) -> list[tuple[ClientLike, pd.DataFrame]]:
    """The plan's rows by scope, each with its client; ConfigError (before anything is sent) naming a scope
    without a client, or when the plan does not say each row's scope."""
    missing = [c for c in SCOPE_KEY if c not in plan.columns]
    if missing:
        raise ConfigError(f"an estate launch needs the plan's {' and '.join(missing)} per row: plan an estate frame "
                          "with plan_exports(...)")  # fmt: skip
    groups = plan.groupby(list(SCOPE_KEY), dropna=False, sort=True)
    return [(client_for(clients, scope), rows) for scope, rows in groups]


def _each(work: Sequence[Callable[[], T]]) -> list[T]:
    """Run every scope's work side by side; the first error (in scope order) is raised once all have ended."""
    if len(work) <= 1:
        return [job() for job in work]
    with ThreadPoolExecutor(max_workers=len(work), thread_name_prefix="ims-nb-estate") as pool:
        futures = [pool.submit(job) for job in work]
        errors = [f.exception() for f in futures]
    first = next((e for e in errors if e is not None), None)
    if first is not None:
        raise first
    return [f.result() for f in futures]


def launch_estate(
    plan: pd.DataFrame, *, clients: Mapping[Scope, ClientLike], ledger: Ledger, **options: Any
) -> pd.DataFrame:
    """``launch`` over an estate: each scope's rows through its own client (``options`` as for ``launch``).

    Returns:
        The ledger rows launched (or settled) in every scope, one frame.
    """
    from ims_nb.exports.launch import launch

    work = [
        partial(launch, rows, client=client, ledger=ledger, **options) for client, rows in plan_scopes(plan, clients)
    ]
    frames = [frame for frame in _each(work) if len(frame)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(COLUMNS))


def watch_estate(ledger: Ledger | None, *, clients: Mapping[Scope, ClientLike], **options: Any) -> pd.DataFrame:
    """``watch`` over an estate: every scope's live rows followed at its own endpoint (``options`` as for
    ``watch``); one ``jobs_frame`` of every scope's rows."""
    from ims_nb.exports.watch import watch

    if ledger is None:
        raise ConfigError("an estate watch follows a ledger; job ids need the one client that knows them")
    if not clients:
        raise ConfigError("an estate watch needs its clients: a mapping of (region, project_id) to client")
    work = [partial(watch, ledger, client=client, **options) for client in clients.values()]
    frames = [frame[~frame["belongs_to"].str.startswith(ELSEWHERE)] for frame in _each(work)]  # each its scope's
    found = [frame for frame in frames if len(frame)]
    if not found:
        return frames_or_empty(ledger)
    return pd.concat(found).sort_values("row_id", kind="stable").reset_index(drop=True)


def frames_or_empty(ledger: Ledger) -> pd.DataFrame:
    """An empty ``jobs_frame`` (with its columns), for an estate with no rows."""
    from ims_nb.exports.history import jobs_frame

    return jobs_frame(ledger).iloc[:0]
