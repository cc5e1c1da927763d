"""One image's coverage status, decided from its ledger rows and the exports found of it, with what it rests on."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import pandas as pd  # type: ignore[import-untyped, unused-ignore]

from ims_nb.vocab import DONE, LIVE, Coverage, written_format

__all__ = ["VERDICT_COLUMNS", "Export", "image_status"]

_EPOCH = pd.Timestamp(0, tz="UTC")
#: What ``image_status`` says of an image besides its status.
VERDICT_COLUMNS = ("last_export_at", "target", "file_format", "note")


class Export(NamedTuple):
    """One export of an image whose file exists: when it was written, where, in which format, and who knows it."""

    at: pd.Timestamp
    target: str
    file_format: str | None
    in_ledger: bool


def image_status(
    attempts: list[dict[str, Any]],
    outside: list[Export],
    present: Mapping[tuple[str, str], pd.Timestamp],
    updated: pd.Timestamp,
    blocking: list[str],
) -> dict[str, Any]:
    """One image's status, with the export (or attempt) it rests on and a note (the ``VERDICT_COLUMNS``)."""
    done = [Export(_time(row, present.get((row["bucket"], row["object_key"]))), row["bucket_url"],
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


def _when(export: Export) -> pd.Timestamp:
    return _EPOCH if pd.isna(export.at) else export.at


def _verdict(status: Coverage, export: Export | None, note: str | None) -> dict[str, Any]:
    return {"status": status.value, "last_export_at": export.at if export else pd.NaT,
            "target": export.target if export else None, "file_format": export.file_format if export else None,
            "note": note}  # fmt: skip


def _attempt(status: Coverage, row: dict[str, Any], note: str) -> dict[str, Any]:
    export = Export(_time(row, None), row["bucket_url"], written_format(row["file_format"], bool(row["quick"])),
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
