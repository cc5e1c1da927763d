"""What the panel, monitor and dashboard do differently on an estate: the ledger per scope, one watch per scope."""

from __future__ import annotations

import asyncio
import html
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

import pandas as pd  # type: ignore[import-untyped, unused-ignore]

from ims_nb.client.protocol import AsyncClientLike, ClientLike
from ims_nb.exports.estate import plan_scopes
from ims_nb.exports.history import jobs_frame
from ims_nb.exports.identity import ELSEWHERE, Identity, identity_of
from ims_nb.exports.watch import watch_async
from ims_nb.targets import is_estate
from ims_nb.vocab import LIVE

if TYPE_CHECKING:
    from pathlib import Path

    from ims_nb.exports.ledger import Ledger


def lead_client(client: Any) -> Any:
    """The client to ask of the simulator clock and the like: an estate's first scope's, else ``client``."""
    return next(iter(client.values())) if is_estate(client) else client


def ledger_of(client: Any, ledger: Ledger | str | Path | None) -> Ledger:
    """A widget's ledger as its client's account sees it (``Ledger.bound_to``; an estate's unbound: each scope binds
    its own): the ``Ledger`` given, else one at the path or URL given, else the client's (``location_for``: a
    simulator's own, ``$IMS_NB_LEDGER`` on an account)."""
    from ims_nb.exports.ledger import Ledger, location_for

    if not isinstance(ledger, Ledger):
        ledger = Ledger(ledger if ledger is not None else location_for(lead_client(client)))
    return ledger if is_estate(client) else ledger.bound_to(identity_of(client))


def scope_identities(client: Any) -> list[Identity]:
    """The account identities of an estate's scopes (each scope is its own identity in the ledger)."""
    found = (identity_of(c) for c in client.values())
    return [i for i in found if i is not None]


def decide(ledger: Ledger, plan: pd.DataFrame, client: Any) -> pd.DataFrame:
    """``Ledger.decide`` of a plan: as ``client``'s account, or on an estate each scope's rows as that scope."""
    if not is_estate(client) or not len(plan):
        return ledger.decide(plan)
    parts = [
        ledger.bound_to(identity_of(scope_client)).decide(rows) for scope_client, rows in plan_scopes(plan, client)
    ]
    return pd.concat(parts).reindex(plan.index)


def live_rows(ledger: Ledger, client: Any) -> list[dict[str, Any]]:
    """The ledger's live rows of ``client``'s account, or of every scope of an estate."""
    rows = ledger.rows(LIVE)
    if not is_estate(client):
        return rows
    identities = scope_identities(client)
    return [row for row in rows if any(i.owns(row) for i in identities)]


def async_twin(client: ClientLike | AsyncClientLike) -> tuple[AsyncClientLike, bool]:
    """The async client a watch uses, and whether it was made for the watch (which then closes it): a sync
    client's ``to_async()``, or an async client (one without ``to_async``) as is."""
    to_async: Callable[[], AsyncClientLike] | None = getattr(client, "to_async", None)
    if to_async is None:
        return cast("AsyncClientLike", client), False
    return to_async(), True


async def watch_each(ledger: Ledger, client: Any, **options: Any) -> pd.DataFrame:
    """``watch_async`` with ``client``'s async twin; on an estate one per scope at once on this loop (each polls
    only its scope's jobs: one request per job per poll), as one ``jobs_frame`` of the scopes' rows."""
    if not is_estate(client):
        aclient, owned = async_twin(client)
        try:
            return await watch_async(ledger, client=aclient, **options)
        finally:
            if owned:
                await aclient.aclose()
    frames = await asyncio.gather(*(watch_each(ledger, scope_client, **options) for scope_client in client.values()))
    found = [f[~f["belongs_to"].str.startswith(ELSEWHERE)] for f in frames]
    found = [f for f in found if len(f)]
    if not found:
        return jobs_frame(ledger).iloc[:0]
    return pd.concat(found).sort_values("row_id", kind="stable").reset_index(drop=True)


def estate_jobs(ledger: Ledger, client: Any) -> pd.DataFrame:
    """``jobs_frame`` of the whole ledger, the rows of no scope of the estate marked ``elsewhere:`` (as a bound
    ledger marks another account's); on a single client, ``jobs_frame`` as is."""
    jobs = jobs_frame(ledger)
    if not is_estate(client) or jobs.empty:
        return jobs
    identities = scope_identities(client)
    ours = {row["row_id"] for row in ledger.rows(every_account=True) if any(i.owns(row) for i in identities)}
    mine = jobs["row_id"].isin(list(ours))
    jobs["belongs_to"] = jobs["belongs_to"].where(mine, f"{ELSEWHERE}: " + jobs["belongs_to"])
    return jobs


def endpoints(client: Any) -> str:
    """The IMS endpoint(s) a client or an estate talks to, as the simulator banner names them."""
    if not is_estate(client):
        return str(client.endpoints.ims)
    return ", ".join(dict.fromkeys(str(c.endpoints.ims) for c in client.values()))


def on_simulator_any(client: Any) -> bool:
    """Whether a client, or an estate, talks to a simulator."""
    return bool(client.is_simulator if is_estate(client) else client.settings.is_simulator)


def estate_facts(estate: Mapping[Any, Any], ledger: Ledger) -> list[tuple[str, Any]]:
    """The dashboard header's facts of an estate: its regions, projects, who signs, the ledger."""
    projects = getattr(estate, "projects", None)
    names = [f"{p.name} ({p.region})" for p in projects] if projects else [f"{p} ({r})" for r, p in estate]
    regions = sorted({r for r, _ in estate})
    credentials = lead_client(estate).settings.credentials
    return [("regions", ", ".join(regions)), ("projects", ", ".join(names)), ("signed with", credentials),
            ("ledger", ledger.url)]  # fmt: skip


def facts_html(facts: Sequence[tuple[str, Any]], muted: str) -> str:
    """Facts as the header shows them: a muted name and the value in code, side by side."""
    return "".join(f"<span style='margin-right:1.5em'><span style='color:{muted}'>{name}</span> "
                   f"<code>{html.escape(str(value))}</code></span>" for name, value in facts)  # fmt: skip
