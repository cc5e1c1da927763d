"""What the export monitor shows of a ledger row, as pure functions: bar colour, status text, ETA, summary, region."""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Any

from ims_nb.vocab import DONE, LIVE, State

#: Row states shown as a red bar: the export produced no usable file.
FAILED = frozenset({State.FAILED, State.MISSING, State.REFUSED})
STALLED = "<b style='color:#b00020'>stalled</b>"
SEPARATOR = " · "
#: A regional IMS endpoint, ``https://ims.{region}.myhuaweicloud.com``: the region is its second label.
_REGIONAL_ENDPOINT = re.compile(r"^\w+://ims\.([a-z0-9-]+)\.")


class BarStyle(StrEnum):
    RUNNING = "info"
    SUCCESS = "success"
    FAILED = "danger"


def bar_style(state: str) -> str:
    """The progress bar's colour for a ledger state."""
    if state in DONE:
        return BarStyle.SUCCESS.value
    return (BarStyle.FAILED if state in FAILED else BarStyle.RUNNING).value


def human_eta(seconds: float) -> str:
    """``ETA 12 min``, ``ETA 2 h 05 min``, ``ETA 3 d 4 h``: remaining time as a person reads it."""
    minutes = round(seconds / 60)
    if minutes < 1:
        return "ETA < 1 min"
    if minutes < 60:
        return f"ETA {minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"ETA {hours} h {minutes:02d} min"
    return f"ETA {hours // 24} d {hours % 24} h"


def clock_note(speed: float | None) -> str:
    """What a simulator's ETAs are in: ``simulator clock ×600: ETAs in real time`` (``speed``: its clock scale,
    None for a manual or unread clock, whose ETAs stay in simulated time)."""
    if speed is None:
        return "simulator clock manual or unread: ETAs in simulated time"
    return f"simulator clock ×{speed:g}: ETAs in real time"


def row_text(row: dict[str, Any], *, eta_seconds: float | None = None, stalled: bool = False) -> str:
    """The HTML beside a bar: service status and percent, ledger state, then ETA and stall, or the error."""
    state, percent = str(row["state"]), row.get("process_percent")
    status = " ".join(p for p in (row.get("status") or "", "" if percent is None else f"{percent:.0f} %") if p)
    parts = [html.escape(p) for p in (status, state) if p]
    if state in FAILED:
        reason = ": ".join(str(p) for p in (row.get("error_code"), row.get("fail_reason") or row.get("note")) if p)
        parts += [html.escape(reason)] if reason else []
    elif state in LIVE:
        parts += [human_eta(eta_seconds)] if eta_seconds is not None else []
        parts += [STALLED] if stalled else []
    return SEPARATOR.join(parts)


def who_text(row: Mapping[str, Any]) -> str:
    """``ann @ hub-1``: who launched a row where (the IAM user, else the signer ``AK <id>``; the host when known)."""
    who, host = row.get("launched_user") or row.get("launched_by"), row.get("launched_host")
    return " @ ".join(str(part) for part in (who, host) if part)


def summary(states: Iterable[str]) -> str:
    """``3 exports: 1 running, 2 verified`` (states in their life order)."""
    seen = [str(s) for s in states]
    if not seen:
        return "no exports"
    counts = [f"{seen.count(s.value)} {s.value}" for s in State if s.value in seen]
    return f"{len(seen)} export{'s' if len(seen) != 1 else ''}: {', '.join(counts)}"


def region_heading(region: str, states: Iterable[str]) -> str:
    """The HTML heading of one region's rows: ``<b>cn-north-4</b> · 2 exports: 2 running``."""
    return f"<b>{html.escape(region)}</b>{SEPARATOR}{html.escape(summary(states))}"


def header_text(states: Iterable[str], watching: bool, clock: str, updated: str) -> str:
    """The monitor's HTML header: the summary of every row's state, ``watching`` while a watch runs, the
    simulator clock's note (``clock_note``; empty on an account) and when it was ``updated``."""
    parts = [f"<b>{html.escape(summary(states))}</b>", "watching" if watching else "", html.escape(clock),
             f"updated {updated}"]  # fmt: skip
    return SEPARATOR.join(p for p in parts if p)


def region_of(row: Mapping[str, Any]) -> str:
    """The region a ledger row's export runs in: its ``region``, else the one its IMS endpoint names, else the
    endpoint itself (a simulator's regions differ by endpoint), else ``?``."""
    endpoint = str(row.get("endpoint") or "")
    found = _REGIONAL_ENDPOINT.match(endpoint)
    return str(row.get("region") or (found.group(1) if found else endpoint) or "?")


def by_region(regions: Mapping[int, str]) -> dict[str, list[int]]:
    """Row ids (of ``row id -> region``) grouped by region, the regions in the order their first row comes."""
    groups: dict[str, list[int]] = {}
    for row_id, region in regions.items():
        groups.setdefault(region, []).append(row_id)
    return groups
