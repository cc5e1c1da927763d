"""What a preflight rule is: severities, region profiles, the ``Rule`` record, and its message templates filled."""

from __future__ import annotations

import math
import string
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import pandas as pd  # type: ignore[import-untyped, unused-ignore]


class Severity(StrEnum):
    """``error`` refuses the export; ``warning`` does not, but says what is doubtful."""

    ERROR = "error"
    WARNING = "warning"


class Verdict(StrEnum):
    """What a region profile says of a relaxed rule."""

    REFUSED = "refused"
    ALLOWED = "allowed"
    UNCONFIRMED = "unconfirmed"


@dataclass(frozen=True)
class RegionProfile:
    """How the export rules read in one region (the docs differ by region and doc site).

    Attributes:
        ubuntu_derived: may images derived from an Ubuntu public image be exported?
        normal_over_128: may images over 128 GiB be exported without fast export?
        source: where the verdicts come from.
    """

    name: str
    ubuntu_derived: Verdict
    normal_over_128: Verdict
    source: str


#: Dedicated-region doc sites state the strict rules; the main site says "allowed in some regions".
STRICT = RegionProfile("strict", Verdict.REFUSED, Verdict.REFUSED, "dedicated-region API pages (eu-west-0, ae-ad-1, "
                       "my-kualalumpur-1): Ubuntu-derived refused, over 128 GiB fast export only")  # fmt: skip
DEFAULT_PROFILE = RegionProfile(
    "default", Verdict.UNCONFIRMED, Verdict.UNCONFIRMED,
    "main-site API pages: Ubuntu-derived images and normal export over 128 GiB are allowed 'in some regions'",
)  # fmt: skip
REGION_PROFILES: dict[str, RegionProfile] = {
    region: RegionProfile(region, STRICT.ubuntu_derived, STRICT.normal_over_128, f"{region} dedicated API page")
    for region in ("eu-west-0", "ae-ad-1", "my-kualalumpur-1")
}
#: The embedded simulator plays the strict rules (README, "Refusal codes").
SIMULATOR_PROFILE = RegionProfile("simulator", Verdict.REFUSED, Verdict.REFUSED, "the embedded simulator (strict)")


def profile_for(region: str | None) -> RegionProfile:
    return REGION_PROFILES.get(region or "", DEFAULT_PROFILE)


Check = Callable[[pd.DataFrame, RegionProfile], Any]
Codes = Callable[[pd.DataFrame], Any]


@dataclass(frozen=True)
class Rule:
    """One export constraint.

    Attributes:
        id: stable rule id (documented in the README).
        severity: the usual severity; a region profile may soften a rule to a warning for some rows.
        columns: the plan columns the check reads.
        message: a ``str.format`` template over plan columns naming the offending value.
        fix: what to do instead, or "" when nothing helps.
        code: the ``IMG.xxxx`` code the service answers (None for warnings the service never raises).
        source: where the constraint is documented.
        check: ``check(plan, profile) -> bool Series``, vectorised.
        codes: per-row codes when one rule covers several service codes.
        soft: per-row "only a warning" mask (the region's rule is unconfirmed), if any.
    """

    id: str
    severity: Severity
    columns: tuple[str, ...]
    message: str
    fix: str
    code: str | None
    source: str
    check: Check
    codes: Codes | None = None
    soft: Check | None = None


# --- messages: templates filled column by column, for the flagged rows only ------------------

MISSING = "(missing)"
_FORMATTER = string.Formatter()


def template_fields(template: str) -> tuple[str, ...]:
    """The plan columns a message or fix template names."""
    return tuple(field for _, field, _, _ in _FORMATTER.parse(template) if field)


def fill(template: str, rows: pd.DataFrame) -> list[str]:
    """``template`` filled from each row; a missing value reads ``(missing)`` whatever its format spec."""
    parts: list[list[str]] = []
    for literal, field, spec, conversion in _FORMATTER.parse(template):
        if literal:
            parts.append([literal] * len(rows))
        if field is not None:
            parts.append([_render(value, spec or "", conversion) for value in rows[field].tolist()])
    return ["".join(pieces) for pieces in zip(*parts, strict=True)] if parts else [""] * len(rows)


def _render(value: Any, spec: str, conversion: str | None) -> str:
    if value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    try:
        return format(_FORMATTER.convert_field(value, conversion), spec)
    except (ValueError, TypeError):
        return str(value)
