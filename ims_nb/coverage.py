"""Backup coverage: which images have a current verified export whose object still exists, which not and why."""

from __future__ import annotations

import logging
import re
import string
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

import pandas as pd  # type: ignore[import-untyped, unused-ignore]

from ims_nb.client.obs_listing import objects_frame
from ims_nb.errors import ApiError
from ims_nb.exports.identity import scoped
from ims_nb.preflight import as_images_frame, profile_of
from ims_nb.targets import bucket_choices, check_key_template, expand_keys
from ims_nb.vocab import DEFAULT_KEY_TEMPLATE, DONE, GAP, LIVE, UNCOVERED, Coverage, Target, written_format

if TYPE_CHECKING:
    from ims_nb.client.protocol import ClientLike
    from ims_nb.exports.ledger import Ledger
    from ims_nb.rules import RegionProfile

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
_EPOCH = pd.Timestamp(0, tz="UTC")


class _Export(NamedTuple):
    """One export of an image whose file exists: when it was written, where, in which format, and who knows it."""

    at: pd.Timestamp
    target: str
    file_format: str | None
    in_ledger: bool


def coverage(
    images: Any,
    ledger: Ledger,
    client: ClientLike,
    *,
    buckets: Iterable[str] | None = None,
    key_template: str | None = None,
    profile: RegionProfile | None = None,
) -> pd.DataFrame:
    """One row per image: whether a verified export of it exists and is current, or why not.

    ``status`` (``ims_nb.vocab.Coverage``): ``covered`` (a verified export in this account's ledger whose object
    still exists), ``covered (outside the ledger)`` (an object in a listed bucket whose key names the image),
    ``stale`` (the image was updated after its newest export), ``in-progress``, ``failed`` (attempts, none
    covering: failed, refused, or the object is gone since), ``never`` (no ledger row) or ``not-exportable``
    (``blocking``: the rules that refuse it; a covered image stays covered). Sorted uncovered first, then the
    oldest images and the biggest.

    Args:
        images: ``client.images()`` (an estate frame keeps its ``region``, ``project_id``, ``project_name``).
        ledger: the export ledger; only the rows of the client's account count.
        client: lists the buckets (one listing per bucket) and gives the rule profile.
        buckets: the buckets to search for exports the ledger does not know (default: the ledger's target
            buckets, else the Standard buckets of the region); the ledger's own targets are always listed.
        key_template: how keys name images (default ``DEFAULT_KEY_TEMPLATE``); a key with an image id (or its
            first 8 characters, when the template has ``{id8}``) matches too.
        profile: the rule profile that says which images are exportable (default: each region's, as ``preflight``).
    """
    frame = as_images_frame(images, client)
    template = DEFAULT_KEY_TEMPLATE if key_template is None else key_template
    account_rows = scoped(ledger, client).rows()
    objects = _list(client, _buckets_to_list(client, account_rows, buckets))
    present = dict(zip(zip(objects["bucket"], objects["key"], strict=True), objects["last_modified"], strict=True))
    known = {(row["bucket"], row["object_key"]) for row in account_rows}
    unknown = objects[[pair not in known for pair in zip(objects["bucket"], objects["key"], strict=True)]]
    outside: dict[str, list[_Export]] = {}
    for image_id, bucket, key, at in zip(match_keys(unknown["key"], frame, template), unknown["bucket"],
                                         unknown["key"], unknown["last_modified"], strict=True):  # fmt: skip
        if image_id is not pd.NA:
            outside.setdefault(image_id, []).append(_Export(at, Target(bucket, key).bucket_url, _extension(key), False))
    attempts: dict[str, list[dict[str, Any]]] = {}
    for row in account_rows:
        attempts.setdefault(row["image_id"], []).append(row)
    blocking = _blocking(frame, client, profile)
    judged = [_judge(attempts.get(image_id, []), outside.get(image_id, []), present, updated, blocking[image_id])
              for image_id, updated in zip(frame["id"], frame["updated_at"], strict=True)]  # fmt: skip
    return _coverage_frame(frame, judged, blocking)


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
            return pd.to_datetime(value, utc=True)
    created = row.get("created_at")
    return pd.NaT if created is None else pd.to_datetime(created, unit="s", utc=True)


def _extension(key: str) -> str | None:
    _, dot, extension = key.rpartition(".")
    return extension or None if dot else None


def _coverage_frame(
    frame: pd.DataFrame, judged: list[dict[str, Any]], blocking: Mapping[str, list[str]]
) -> pd.DataFrame:
    identity = ["id", "name", *(c for c in ESTATE_COLUMNS if c in frame.columns)]
    out = frame[identity].copy()
    verdicts = pd.DataFrame(judged, index=frame.index)
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


def _buckets_to_list(client: ClientLike, rows: list[dict[str, Any]], buckets: Iterable[str] | None) -> list[str]:
    """The ledger's target buckets, and where to search for other exports: ``buckets``, else those, else the
    region's Standard buckets."""
    if isinstance(buckets, str):
        buckets = [buckets]
    targets = [row["bucket"] for row in rows]
    search = list(buckets) if buckets is not None else [] if targets else [
        choice.name for choice in bucket_choices(client) if choice.problem is None]  # fmt: skip
    return list(dict.fromkeys([*targets, *search]))


def _list(client: ClientLike, names: list[str]) -> pd.DataFrame:
    """Every object of the buckets, one listing each; a bucket that is gone holds none (and says so)."""
    frames = []
    for name in names:
        try:
            frames.append(client.objects(name))
        except ApiError as exc:
            if exc.status != 404:
                raise
            log.warning("coverage: bucket %s does not exist (%s); its exports count as gone", name, exc.code)
    return pd.concat(frames, ignore_index=True) if frames else objects_frame([])


def _blocking(frame: pd.DataFrame, client: ClientLike, profile: RegionProfile | None) -> dict[str, list[str]]:
    """The rules that refuse each image's export whatever its target (each row judged by its region's profile)."""
    from ims_nb.exports.plan import review

    home = getattr(client, "region", None)
    groups = frame.groupby("region", dropna=False, sort=False) if "region" in frame.columns else [(home, frame)]
    found: dict[str, list[str]] = {}
    for region, part in groups:
        where = home if region is None or region is pd.NA or region != region else str(region)
        judged = review(part, bucket=_PROBE.bucket, key_template=_PROBE.key, quick="auto", region=where,
                        profile=profile or profile_of(client, where), shared_targets=True)  # fmt: skip
        found.update(zip(judged.plan["image_id"], judged.plan["blocking"], strict=True))
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
    counts = keys.value_counts()
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
