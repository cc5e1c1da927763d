"""Backup coverage: which images have a current verified export whose object still exists, which not and why."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple, cast

import numpy as np
import pandas as pd  # type: ignore[import-untyped, unused-ignore]

from ims_nb.coverage_objects import key_pattern, list_objects, match_keys, outside_exports
from ims_nb.coverage_status import VERDICT_COLUMNS, image_status
from ims_nb.errors import ConfigError
from ims_nb.exports.identity import scoped
from ims_nb.preflight import as_images_frame, profile_of
from ims_nb.rules import RegionProfile, Severity
from ims_nb.targets import BucketsLike, bucket_choices, client_for, expand_buckets, is_estate, single
from ims_nb.vocab import DEFAULT_KEY_TEMPLATE, GAP, SCOPE_KEY, UNCOVERED, Coverage, Scope, Target

if TYPE_CHECKING:
    from ims_nb.client.protocol import ClientLike
    from ims_nb.exports.ledger import Ledger

__all__ = ["COVERAGE_COLUMNS", "coverage", "coverage_summary", "key_pattern", "match_keys", "uncovered"]

#: The columns ``coverage`` adds to each image's identifying ones (``id``, ``name``, and ``ESTATE_COLUMNS``).
COVERAGE_COLUMNS = ("status", "blocking", "last_export_at", "target", "file_format", "size_bytes",
                    "image_updated_at", "image_created_at", "note")  # fmt: skip
#: The columns of an estate frame that say where an image lives, kept when present.
ESTATE_COLUMNS = ("region", "project_id", "project_name")
#: Sort order: what an export would close first, then what is under way, what cannot be exported, what is covered.
_RANK = {**dict.fromkeys(GAP, 0), Coverage.IN_PROGRESS: 1, Coverage.NOT_EXPORTABLE: 2, Coverage.COVERED: 3,
         Coverage.OUTSIDE: 3}  # fmt: skip
#: A bucket name for judging images alone: no client, so no bucket or object rule fires, only the image's own.
_PROBE = Target("coverage-probe", "{id}.{ext}")
_PROBE_FORMAT = "qcow2"


def coverage(
    images: Any,
    ledger: Ledger,
    client: ClientLike | Mapping[Scope, ClientLike],
    *,
    buckets: Iterable[str] | BucketsLike | None = None,
    key_template: str | None = None,
    profile: RegionProfile | None = None,
    objects: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per image: whether a verified export of it exists and is current, or why not.

    ``status`` (``ims_nb.vocab.Coverage``): ``covered`` (a verified export in this account's ledger whose object
    still exists), ``covered (outside the ledger)`` (an object in a listed bucket whose key names the image),
    ``stale`` (the image was updated after its newest export), ``in-progress``, ``failed`` (attempts, none
    covering: failed, refused, or the object is gone since), ``never`` (no ledger row) or ``not-exportable``
    (``blocking``: the rules that refuse it; a covered image stays covered). Sorted uncovered first, then the
    oldest images and the biggest.

    Args:
        images: ``client.images()``, or an estate's ``images()`` (its ``region``, ``project_id``,
            ``project_name`` are kept).
        ledger: the export ledger; only the rows of the client's account count (of each scope's, for an estate).
        client: lists the buckets (one listing per bucket) and gives the rule profile; or an estate's clients
            (``(region, project_id)`` -> client): each scope's rows judged with its own ledger rows and its region's
            profile, each region's buckets listed through that region's client.
        buckets: the buckets to search for exports the ledger does not know (default: the ledger's target
            buckets, else the Standard buckets of the region); names, or for an estate a template of
            ``{region}``/``{project}`` (``ims-exports-{region}``) or a region -> bucket mapping, as the plans take.
            The ledger's own targets are always listed.
        key_template: how keys name images (default ``DEFAULT_KEY_TEMPLATE``); a key with an image id (or its
            first 8 characters, when the template has ``{id8}``) matches too.
        profile: the rule profile that says which images are exportable (default: each region's, as ``preflight``).
        objects: the buckets' objects already listed (``client.objects`` frames, concatenated): no listing is sent.
    """
    frame = as_images_frame(images, single(client))
    template = DEFAULT_KEY_TEMPLATE if key_template is None else key_template
    scopes = _scopes(frame, client, ledger)
    where = _bucket_regions(frame, scopes, buckets)
    if objects is None:
        objects = list_objects(where)
    present = dict(zip(zip(objects["bucket"], objects["key"], strict=True), objects["last_modified"], strict=True))
    known = {(row["bucket"], row["object_key"]) for scope in scopes for row in scope.rows}
    unknown = objects[[pair not in known for pair in zip(objects["bucket"], objects["key"], strict=True)]]
    home = scopes[0].region if len(scopes) == 1 else None  # one client: its buckets are its region's
    regions = unknown["bucket"].map({b: r for b, (r, _) in where.items()}).fillna(home) if len(unknown) else []
    blocking = _blocking(frame, scopes, profile)
    judged: dict[int, dict[str, Any]] = {}
    for region in dict.fromkeys(s.region for s in scopes):
        mine = [s for s in scopes if s.region == region]
        positions = np.concatenate([s.positions for s in mine])
        outside = outside_exports(
            unknown[regions == region] if len(unknown) else unknown, frame.iloc[positions], template
        )
        for scope in mine:
            attempts: dict[str, list[dict[str, Any]]] = {}
            for row in scope.rows:
                attempts.setdefault(row["image_id"], []).append(row)
            part = frame.iloc[scope.positions]
            judged.update(
                (position, image_status(attempts.get(image_id, []), outside.get(image_id, []), present, updated,
                                        blocking[image_id]))
                for position, image_id, updated in zip(scope.positions, part["id"], part["updated_at"], strict=True)
            )  # fmt: skip
    return _coverage_frame(frame, [judged[i] for i in range(len(frame))], blocking)


class _Scope(NamedTuple):
    """The rows of the images frame one client judges (one project of a region), and its ledger rows."""

    region: str | None
    client: ClientLike
    positions: np.ndarray[Any, np.dtype[np.intp]]
    rows: list[dict[str, Any]]


def _scopes(frame: pd.DataFrame, client: ClientLike | Mapping[Scope, ClientLike], ledger: Ledger) -> list[_Scope]:
    """One scope for one client (every row); an estate's: one per ``(region, project_id)`` of the frame."""
    if not is_estate(client):
        one = cast("ClientLike", client)
        everything = np.arange(len(frame), dtype=np.intp)
        return [_Scope(getattr(one, "region", None), one, everything, scoped(ledger, one).rows())]
    clients = cast("Mapping[Scope, ClientLike]", client)
    missing = [c for c in SCOPE_KEY if c not in frame.columns]
    if missing:
        raise ConfigError(f"coverage over an estate needs the images' {' and '.join(missing)}: use estate.images()")
    groups = frame.reset_index(drop=True).groupby(list(SCOPE_KEY), dropna=False, sort=True).indices
    found = []
    for (region, project_id), positions in groups.items():
        chosen = client_for(clients, (region, project_id))
        found.append(_Scope(str(region), chosen, np.asarray(positions, dtype=np.intp), scoped(ledger, chosen).rows()))
    return found


def _coverage_frame(
    frame: pd.DataFrame, judged: list[dict[str, Any]], blocking: Mapping[str, list[str]]
) -> pd.DataFrame:
    identity = ["id", "name", *(c for c in ESTATE_COLUMNS if c in frame.columns)]
    out = frame[identity].copy()
    verdicts = pd.DataFrame(judged, index=frame.index, columns=["status", *VERDICT_COLUMNS])
    out["status"] = verdicts["status"].astype("string")
    out["blocking"] = [blocking[i] for i in frame["id"]]
    out["last_export_at"] = pd.to_datetime(verdicts["last_export_at"], utc=True)
    for column in ("target", "file_format", "note"):
        out[column] = verdicts[column].astype("string")
    out["size_bytes"] = frame["size_bytes"]
    out["image_updated_at"], out["image_created_at"] = frame["updated_at"], frame["created_at"]
    out["_rank"] = out["status"].map(_RANK)
    out = out.sort_values(["_rank", "image_created_at", "size_bytes"], ascending=[True, True, False], kind="stable")
    return out.drop(columns="_rank")[[*identity, *COVERAGE_COLUMNS]].reset_index(drop=True)


def _bucket_regions(
    frame: pd.DataFrame, scopes: list[_Scope], buckets: Iterable[str] | BucketsLike | None
) -> dict[str, tuple[str | None, ClientLike]]:
    """Each bucket to list, once, with its region and the client that lists it: per region, its scopes' ledger
    targets, and where to search for other exports: ``buckets``, else those, else the region's Standard buckets."""
    found: dict[str, tuple[str | None, ClientLike]] = {}
    for region in dict.fromkeys(s.region for s in scopes):
        mine = [s for s in scopes if s.region == region]
        targets = [row["bucket"] for s in mine for row in s.rows]
        if buckets is None:
            search = [] if targets else [c.name for c in bucket_choices(mine[0].client) if c.problem is None]
        else:
            search = [name for s in mine for name in _search(frame.iloc[s.positions], region, buckets)]
        for name in dict.fromkeys([*targets, *search]):
            found.setdefault(name, (region, mine[0].client))
    return found


def _search(part: pd.DataFrame, region: str | None, buckets: Iterable[str] | BucketsLike) -> list[str]:
    """The buckets ``buckets`` names for some images of one region: a name, names, a template or a mapping."""
    if isinstance(buckets, Mapping):
        return [buckets[region]] if region is not None and region in buckets else []
    if not isinstance(buckets, str):
        return list(buckets)
    rows = part if "region" in part.columns else part.assign(region=region)
    return [str(name) for name in expand_buckets(rows, buckets).dropna().unique()]


def _blocking(frame: pd.DataFrame, scopes: list[_Scope], profile: RegionProfile | None) -> dict[str, list[str]]:
    """The rules that refuse each image's export whatever its target (each row judged by its region's profile):
    ``review``'s verdicts, from its plan and rules alone (its plan frame and summary are not needed here)."""
    from ims_nb.exports.plan import quick_choice
    from ims_nb.preflight import build_plan, judge

    clients: dict[str | None, ClientLike] = {}
    for scope in scopes:
        clients.setdefault(scope.region, scope.client)
    home = scopes[0].region if scopes else None
    groups = frame.groupby("region", dropna=False, sort=False) if "region" in frame.columns else [(home, frame)]
    found: dict[str, list[str]] = {}
    for region, part in groups:
        where = home if pd.isna(region) else str(region)
        client = clients.get(where, scopes[0].client if scopes else None)
        plan = build_plan(part, bucket=_PROBE.bucket, key_template=_PROBE.key, file_format=_PROBE_FORMAT,
                          quick=quick_choice(part, "auto"), region=where, project_id=None)  # fmt: skip
        plan["file_format"] = plan["file_format"].where(~plan["quick"], pd.NA)
        violations = judge(plan, None, profile or profile_of(client, where))
        errors = violations[violations["severity"] == Severity.ERROR.value]
        found.update((image_id, []) for image_id in part["id"])
        for image_id, rule in zip(errors["image_id"], errors["rule"], strict=True):
            found[image_id].append(rule)
    return found


def coverage_summary(frame: pd.DataFrame) -> pd.DataFrame:
    """Images and bytes per status (per region and status when the frame has regions), every status shown."""
    by = ["region", "status"] if "region" in frame.columns else ["status"]
    statuses = pd.Categorical(frame["status"], categories=[c.value for c in Coverage])
    grouped = frame.assign(status=statuses).groupby(by, observed=False, sort=True)
    summary = grouped.agg(images=("id", "size"), size_bytes=("size_bytes", "sum")).reset_index()
    return summary.astype({"status": "string", "images": "int64", "size_bytes": "Int64"})


def uncovered(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of exportable images without a current export (``UNCOVERED``: the gap and what is under way)."""
    return frame[frame["status"].isin([s.value for s in UNCOVERED])]
