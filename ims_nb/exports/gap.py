"""Exporting the coverage gap: the plan of the images without a current export, and its launch through the ledger."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pandas as pd  # type: ignore[import-untyped, unused-ignore]

from ims_nb.exports.estate import plan_scopes
from ims_nb.exports.identity import scoped
from ims_nb.exports.launch import REPORT_COLUMNS, launch_report
from ims_nb.exports.plan import plan_exports
from ims_nb.preflight import as_images_frame
from ims_nb.targets import single
from ims_nb.vocab import DONE, GAP, Action, Scope, Target

if TYPE_CHECKING:
    from ims_nb.client.protocol import ClientLike
    from ims_nb.exports.ledger import Ledger
    from ims_nb.rules import RegionProfile

__all__ = ["coverage_gap_plan", "launch_gap"]


def coverage_gap_plan(
    frame: pd.DataFrame,
    images: Any,
    *,
    bucket_url: str | Target,
    client: ClientLike | Mapping[Scope, ClientLike] | None = None,
    file_format: str | None = "qcow2",
    quick: bool | str = "auto",
    profile: RegionProfile | None = None,
) -> pd.DataFrame:
    """The plan (``ims_nb.plan_exports``) that closes the gap: the ``never``, ``failed`` and ``stale`` rows of a
    ``coverage`` frame, to ``bucket_url`` (``bucket:key-template``); ``launch_gap`` (or ``launch``) sends it.

    With an estate frame and its clients, the bucket and key may use ``{region}`` and ``{project}``
    (``ims-exports-{region}:{project}/{name}-{id8}.{ext}``): each row goes to its own region's bucket.
    A stale image exported again to its old key is refused (``object-exists``): give a template with another key.
    """
    target = Target.parse(bucket_url)
    gap = set(frame.loc[frame["status"].isin([s.value for s in GAP]), "id"])
    chosen = as_images_frame(images, single(client))
    return plan_exports(chosen[chosen["id"].isin(gap)], bucket=target.bucket, key_template=target.key,
                        file_format=file_format, quick=quick, client=client, profile=profile)  # fmt: skip


def launch_gap(
    plan: pd.DataFrame, *, client: ClientLike | Mapping[Scope, ClientLike], ledger: Ledger, **options: Any
) -> pd.DataFrame:
    """``launch_report`` of a gap plan (``options`` as for ``launch``); an export the ledger has as done but whose
    object is gone (preflight finds no object there) is sent again, the other rows once as always. With an
    estate's clients, each scope's rows through its own client and its own ledger rows, scope after scope."""
    if isinstance(client, Mapping):
        reports = [launch_gap(rows, client=one, ledger=ledger, **options) for one, rows in plan_scopes(plan, client)]
        return pd.concat(reports, ignore_index=True) if reports else pd.DataFrame(columns=list(REPORT_COLUMNS))
    ledger = scoped(ledger, client)
    decided = ledger.decide(plan)
    again = ((decided["action"] == Action.SKIP) & decided["state"].isin([s.value for s in DONE])
             & plan["exportable"].fillna(False).astype(bool))  # fmt: skip
    reports = [launch_report(plan[~again], client=client, ledger=ledger, **options)]
    if again.any():
        reports.append(launch_report(plan[again], client=client, ledger=ledger, force=True, **options))
    return pd.concat(reports, ignore_index=True)
