"""Backup coverage: which images have a current verified export whose object still exists, which not and why."""

from __future__ import annotations

import logging
import re
import string
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple, cast

import numpy as np
import pandas as pd  # type: ignore[import-untyped, unused-ignore]

from ims_nb.client.obs_listing import objects_frame
from ims_nb.errors import ApiError, ConfigError
from ims_nb.exports.identity import scoped
from ims_nb.preflight import as_images_frame, profile_of
from ims_nb.rules import RegionProfile, Severity
from ims_nb.targets import (
    BucketsLike,
    bucket_choices,
    check_key_template,
    client_for,
    expand_buckets,
    expand_keys,
    is_estate,
    single,
)
from ims_nb.vocab import (
    DEFAULT_KEY_TEMPLATE,
    DONE,
    GAP,
    LIVE,
    SCOPE_KEY,
    UNCOVERED,
    Coverage,
    Scope,
    Target,
    written_format,
)

if TYPE_CHECKING:
    from ims_nb.client.protocol import ClientLike
    from ims_nb.exports.ledger import Ledger

__all__ = ["COVERAGE_COLUMNS", "coverage", "coverage_summary", "key_pattern", "match_keys", "uncovered"]

log = logging.getLogger("ims_nb")
#: The columns ``coverage`` adds to each image's identifying ones (``id``, ``name``, and ``ESTATE_COLUMNS``).
COVERAGE_COLUMNS = ("status", "blocking", "last_export_at", "target", "file_format", "size_bytes",
                    "image_updated_at", "image_created_at", "note")  # fmt: skip
#: The columns of an estate frame that say where an image lives, kept when present.
ESTATE_COLUMNS = ("region", "project_id", "project_name")
#: Sort order: what an export would close first, then what is under way, what cannot be exported, what is covered.
_RANK = {**dict.fromkeys(GAP, 0), Coverage.IN_PROGRESS: 1, Coverage.NOT_EXPORTABLE: 2, Coverage.COVERED: 3,
         Coverage.OUTSIDE: 3}  # fmt: skip
#: What the inverted key template captures of each field (``{region}``, ``{project}`` and others: any segment).
_FIELD_PATTERNS = {"id": r"[0-9A-Za-z-]+", "id8": r"[0-9A-Za-z-]{8}", "name": r"[A-Za-z0-9._-]+?",
                   "platform": r"[A-Za-z0-9._-]+?", "ext": r"[A-Za-z0-9]+", "format": r"[A-Za-z0-9]+"}  # fmt: skip
_UUID = re.compile(r"[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")
_ID8 = re.compile(r"(?<![0-9A-Za-z])[0-9a-fA-F]{8}(?![0-9A-Za-z])")
#: A bucket name for judging images alone: no client, so no bucket or object rule fires, only the image's own.
_PROBE = Target("coverage-probe", "{id}.{ext}")
_PROBE_FORMAT = "qcow2"
_EPOCH = pd.Timestamp(0, tz="UTC")
#: What ``_judge`` says of an image besides its status.
_VERDICT_COLUMNS = ("last_export_at", "target", "file_format", "note")


class _Export(NamedTuple):
    """One export of an image whose file exists: when it was written, where, in which format, and who knows it."""

    at: pd.Timestamp
    target: str
    file_format: str | None
    in_ledger: bool


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
        objects = _list(where)
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
        outside = _outside(unknown[regions == region] if len(unknown) else unknown, frame.iloc[positions], template)
        for scope in mine:
            attempts: dict[str, list[dict[str, Any]]] = {}
            for row in scope.rows:
                attempts.setdefault(row["image_id"], []).append(row)
            part = frame.iloc[scope.positions]
            judged.update(
                (position, _judge(attempts.get(image_id, []), outside.get(image_id, []), present, updated,
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


def _judge(
    attempts: list[dict[str, Any]],
    outside: list[_Export],
    present: Mapping[tuple[str, str], pd.Timestamp],
    updated: pd.Timestamp,
    blocking: list[str],
) -> dict[str, Any]:
    """One image's status, with the export (or attempt) it rests on and a note."""
    done = [_Export(_time(row, present.get((row["bucket"], row["object_key"]))), row["bucket_url"],
                    written_format(row["file_format"], bool(row["quick"])) or None, True)
            for row in attempts if row["state"] in DONE and (row["bucket"], row["object_key"]) in present]  # fmt: skip
    found = sorted(done + outside, key=_when)
    current = [e for e in found if pd.isna(updated) or pd.isna(e.at) or e.at >= updated]
    live = [row for row in attempts if row["state"] in LIVE]
    if current:
        newest = max(current, key=lambda e: (e.in_ledger, _when(e)))  # the ledger's own export first
        return _verdict(Coverage.COVERED if newest.in_ledger else Coverage.OUTSIDE, newest, None)
    if live:
        return _attempt(Coverage.IN_PROGRESS, live[-1], "being exported")
    if blocking:
        return _verdict(Coverage.NOT_EXPORTABLE, found[-1] if found else None, "refused by " + ", ".join(blocking))
    if found:
        return _verdict(Coverage.STALE, found[-1], "the image was updated after its newest export")
    if attempts:
        last = attempts[-1]
        gone = last["state"] in DONE
        why = (
            "its object is gone" if gone else f"{last['state']}: {last['error_code'] or ''} {last['fail_reason'] or ''}"
        )
        return _attempt(Coverage.FAILED, last, why.strip(" :"))
    return _verdict(Coverage.NEVER, None, None)


def _when(export: _Export) -> pd.Timestamp:
    return _EPOCH if pd.isna(export.at) else export.at


def _verdict(status: Coverage, export: _Export | None, note: str | None) -> dict[str, Any]:
    return {"status": status.value, "last_export_at": export.at if export else pd.NaT,
            "target": export.target if export else None, "file_format": export.file_format if export else None,
            "note": note}  # fmt: skip


def _attempt(status: Coverage, row: dict[str, Any], note: str) -> dict[str, Any]:
    export = _Export(_time(row, None), row["bucket_url"], written_format(row["file_format"], bool(row["quick"])),
                     True)  # fmt: skip
    return _verdict(status, export, note)


def _time(row: Mapping[str, Any], last_modified: Any) -> pd.Timestamp:
    """When a ledger row's export ended (the service's time), else its object was written, else it began."""
    for value in (row.get("end_time"), last_modified, row.get("begin_time")):
        if value is not None and not pd.isna(value):
            return _utc(pd.Timestamp(value))
    created = row.get("created_at")
    return pd.NaT if created is None else pd.Timestamp(created, unit="s", tz="UTC")


def _utc(moment: pd.Timestamp) -> pd.Timestamp:
    """A time in UTC (a naive one taken as UTC), parsed without ``to_datetime``'s per-call format guessing."""
    return moment.tz_localize("UTC") if moment.tzinfo is None else moment.tz_convert("UTC")


def _extension(key: str) -> str | None:
    _, dot, extension = key.rpartition(".")
    return extension or None if dot else None


def _coverage_frame(
    frame: pd.DataFrame, judged: list[dict[str, Any]], blocking: Mapping[str, list[str]]
) -> pd.DataFrame:
    identity = ["id", "name", *(c for c in ESTATE_COLUMNS if c in frame.columns)]
    out = frame[identity].copy()
    verdicts = pd.DataFrame(judged, index=frame.index, columns=["status", *_VERDICT_COLUMNS])
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


def _list(where: Mapping[str, tuple[str | None, ClientLike]]) -> pd.DataFrame:
    """Every object of the buckets, one listing each through its region's client; a bucket that is gone holds
    none (and says so)."""
    frames = []
    for name, (_, client) in where.items():
        try:
            frames.append(client.objects(name))
        except ApiError as exc:
            if exc.status != 404:
                raise
            log.warning("coverage: bucket %s does not exist (%s); its exports count as gone", name, exc.code)
    return pd.concat(frames, ignore_index=True) if frames else objects_frame([])


def _outside(unknown: pd.DataFrame, images: pd.DataFrame, template: str) -> dict[str, list[_Export]]:
    """The objects the ledger does not know, by the image (of ``images``) their key names."""
    found: dict[str, list[_Export]] = {}
    for image_id, bucket, key, at in zip(match_keys(unknown["key"], images, template), unknown["bucket"],
                                         unknown["key"], unknown["last_modified"], strict=True):  # fmt: skip
        if image_id is not pd.NA:
            found.setdefault(image_id, []).append(_Export(at, Target(bucket, key).bucket_url, _extension(key), False))
    return found


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


def key_pattern(key_template: str) -> re.Pattern[str]:
    """The regex that matches the keys a template gives, capturing each field by name (a repeat must agree)."""
    parts, seen = [], set()
    for literal, field, _, _ in string.Formatter().parse(key_template):
        parts.append(re.escape(literal))
        if field is not None:
            parts.append(f"(?P={field})" if field in seen else f"(?P<{field}>{_FIELD_PATTERNS.get(field, '[^/]+?')})")
            seen.add(field)
    return re.compile("".join(parts))


def match_keys(keys: pd.Series, images: pd.DataFrame, key_template: str) -> pd.Series:
    """The id of the image each object key names, NA where none: by the key template inverted (``{id}``, or
    ``{id8}`` with ``{name}`` when present, or ``{name}`` alone when unique), else a full image id in the key, else
    (when the template has ``{id8}``) the first 8 characters of exactly one image's id."""
    fields = set(check_key_template(key_template))
    pattern = key_pattern(key_template)
    ids = images["id"].astype(str)
    names = expand_keys(images, "{name}", pd.Series("", index=images.index)).astype(str)
    by_id, by_id8, by_name = set(ids), _unique(ids.str[:8], ids), _unique(names, ids)
    by_pair = dict(zip(zip(ids.str[:8], names, strict=True), ids, strict=True))

    def one(key: str) -> Any:
        match = pattern.fullmatch(key)
        found = match.groupdict() if match else {}
        if found.get("id") in by_id:
            return found["id"]
        if "id8" in found:
            image = by_pair.get((found["id8"], found["name"])) if "name" in found else by_id8.get(found["id8"])
        else:
            image = by_name.get(found.get("name", "")) if "id" not in found else None
        image = image or next((token for token in _UUID.findall(key) if token in by_id), None)
        if image is None and "id8" in fields:
            image = next((by_id8[t] for t in _ID8.findall(key) if t in by_id8), None)
        return pd.NA if image is None else image

    return pd.Series([one(str(key)) for key in keys], index=keys.index, dtype="string")


def _unique(keys: pd.Series, ids: pd.Series) -> dict[str, str]:
    """``key -> id`` for the keys that only one image has."""
    counts = Counter(keys)
    return {k: i for k, i in zip(keys, ids, strict=True) if counts[k] == 1}


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
