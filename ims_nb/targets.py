"""Where exports go: the account's buckets (usable ones first), object keys from templates, target columns."""

from __future__ import annotations

import string
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import pandas as pd  # type: ignore[import-untyped, unused-ignore]

from ims_nb.client.protocol import ClientLike
from ims_nb.client.wire import BucketInfo
from ims_nb.errors import ConfigError
from ims_nb.vocab import TARGET_SEPARATOR, Scope, Target, split_bucket_url

if TYPE_CHECKING:
    from typing import TypeAlias

    from ims_nb.client.protocol import LookupLike

    #: One client, or an estate's: ``(region, project_id)`` -> client.
    LookupsLike: TypeAlias = LookupLike | Mapping[Scope, LookupLike]

STANDARD = "STANDARD"
#: The fields of an object-key template; ``SCOPE_FIELDS`` may name a bucket too (one bucket per region or project).
KEY_FIELDS = ("name", "id", "id8", "ext", "platform", "format", "region", "project")
SCOPE_FIELDS = ("region", "project")
#: A bucket for every row: one name (a template of ``SCOPE_FIELDS``), or region -> bucket.
BucketsLike = str | Mapping[str, str]
_UNSAFE_KEY_CHARS = r"[^A-Za-z0-9._-]+"


@dataclass(frozen=True)
class BucketChoice:
    """A bucket as an export target: usable, or why not."""

    bucket: BucketInfo
    problem: str | None  # None when the bucket can receive exports

    @property
    def name(self) -> str:
        return self.bucket.name

    @property
    def label(self) -> str:
        where = f"{self.bucket.storage_class or '?'}, {self.bucket.region or '?'}"
        return f"{self.name} ({where})" + (f": {self.problem}" if self.problem else "")


def judge_bucket(bucket: BucketInfo, region: str | None) -> BucketChoice:
    """Whether exports from ``region`` can be written to ``bucket`` (the service's bucket rules)."""
    if not bucket.exists:
        return BucketChoice(bucket, "does not exist")
    if region and bucket.region and bucket.region != region:
        return BucketChoice(bucket, f"in {bucket.region}, not {region}")
    if (bucket.storage_class or STANDARD) != STANDARD:
        return BucketChoice(bucket, f"{bucket.storage_class} storage, not Standard")
    return BucketChoice(bucket, None)


def bucket_choices(client: ClientLike) -> list[BucketChoice]:
    """Every bucket of the account with its verdict, usable ones first, then by name."""
    region = getattr(client, "region", None)
    found = [judge_bucket(client.bucket(b.name), region) for b in client.buckets()]
    return sorted(found, key=lambda c: (c.problem is not None, c.name))


def region_bucket_choices(clients: Mapping[Scope, ClientLike], region: str) -> list[BucketChoice]:
    """``bucket_choices`` for one region of an estate (``(region, project_id)`` -> client), asked of the region's
    first client: every bucket of the account judged for exports from that region, usable ones first.

    Raises:
        ConfigError: the estate has no client in ``region``.
    """
    client = next((c for (where, _), c in clients.items() if where == region), None)
    if client is None:
        raise ConfigError(f"the estate has no client in region {region} (its regions: "
                          f"{', '.join(sorted({r for r, _ in clients})) or 'none'})")  # fmt: skip
    return bucket_choices(client)


def default_bucket(client: ClientLike) -> str:
    """The first usable bucket of the account (by name), for notebooks that need one to judge exports against.

    Raises:
        ConfigError: no bucket of the account can receive exports from the client's region.
    """
    choices = bucket_choices(client)
    usable = [c.name for c in choices if c.problem is None]
    if not usable:
        seen = "; ".join(c.label for c in choices) or "none"
        raise ConfigError(f"no bucket can receive exports from {getattr(client, 'region', '?')} (buckets: {seen}); "
                          "create a Standard bucket in that region")  # fmt: skip
    return usable[0]


def check_key_template(key_template: str, allowed: Sequence[str] = KEY_FIELDS, what: str = "key") -> tuple[str, ...]:
    """The fields of an object-key template; ConfigError unless each is a plain ``{field}`` from ``allowed``.

    Attribute or index access, conversions (``!r``) and format specs (``:>10``) are refused.
    """
    fields = []
    try:
        for _, field, spec, conversion in string.Formatter().parse(key_template):
            if field is None:
                continue
            if field not in allowed:
                raise KeyError(field)
            if spec or conversion:
                raise ValueError(f"{{{field}}} takes no format spec or conversion")
            fields.append(field)
        key_template.format(**dict.fromkeys(allowed, "x"))
    except (KeyError, IndexError, ValueError, AttributeError, TypeError) as exc:
        raise ConfigError(
            f"{what} template {key_template!r} is invalid ({type(exc).__name__}: {exc}); fields: {', '.join(allowed)}"
        ) from None
    return tuple(fields)


def expand_keys(frame: pd.DataFrame, key_template: str, extension: pd.Series) -> pd.Series:
    """Object keys from a template such as ``exports/{name}-{id8}.{ext}`` (one per image).

    ``{name}`` and ``{platform}`` have every run of characters outside ``A-Za-z0-9._-`` replaced by ``-``;
    ``{region}`` is the row's ``region`` and ``{project}`` its ``project_name`` (a region's main project is named
    after the region, so a frame without project names takes the region).

    Raises:
        ConfigError: the template names an unknown field, or is not a valid ``str.format`` template.
    """
    if not check_key_template(key_template):
        return pd.Series(key_template.format(), index=frame.index, dtype="string")
    ids = frame["id"].astype("string").fillna("")
    values = {
        "name": frame["name"].fillna("image").astype("string").str.replace(_UNSAFE_KEY_CHARS, "-", regex=True),
        "id": ids, "id8": ids.str[:8], "ext": extension.astype("string"),
        "platform": frame["platform"].fillna("other").astype("string").str.replace(_UNSAFE_KEY_CHARS, "-", regex=True),
        "format": extension.astype("string"), **_scope_values(frame),
    }  # fmt: skip
    return _render(key_template, values, frame.index)


def _scope_values(frame: pd.DataFrame) -> dict[str, pd.Series]:
    """The ``{region}`` and ``{project}`` columns of a frame (a missing one is empty, then refused by the rules)."""
    empty = pd.Series(pd.NA, index=frame.index, dtype="string")
    region = frame["region"].astype("string") if "region" in frame.columns else empty
    project = frame["project_name"].astype("string") if "project_name" in frame.columns else empty
    return {"region": region, "project": project.fillna(region)}


def _render(template: str, values: Mapping[str, pd.Series], index: pd.Index) -> pd.Series:
    """A template filled column-wise: literal parts and whole columns."""
    out = pd.Series("", index=index, dtype="string")
    for literal, field, _, _ in string.Formatter().parse(template):
        if literal:
            out = out + literal  # the parser has already turned "{{" into "{"
        if field is not None:
            out = out + values[field].fillna("")
    return out


def expand_buckets(frame: pd.DataFrame, bucket: BucketsLike) -> pd.Series:
    """Each row's bucket: a name, a template of ``SCOPE_FIELDS`` (``backup-{region}``), or a region -> bucket mapping.

    A name with other braces is kept as written (no OBS name has braces: preflight refuses it, ``bucket-url-invalid``).

    Raises:
        ConfigError: the mapping has no bucket for a row's region.
    """
    if isinstance(bucket, Mapping):
        regions = _scope_values(frame)["region"]
        missing = sorted({str(r) for r in regions.fillna("(no region)") if r not in bucket})
        if missing:
            raise ConfigError(f"the bucket mapping has no bucket for region(s) {', '.join(missing)}")
        return regions.map(dict(bucket)).astype("string")
    if not isinstance(bucket, str):
        raise ConfigError(f"bucket must be a name, a template or a mapping of region to bucket, not {bucket!r}")
    try:
        fields = check_key_template(bucket, SCOPE_FIELDS, "bucket")
    except ConfigError:
        fields = ()
    if not fields:
        return pd.Series(bucket, index=frame.index, dtype="string")
    return _render(bucket, _scope_values(frame), frame.index)


def bucket_urls(buckets: pd.Series, keys: pd.Series) -> pd.Series:
    """The ``bucket_url`` column readers see, derived from the bucket and key columns (a missing key: the bucket)."""
    joined = buckets.astype("string") + TARGET_SEPARATOR + keys.astype("string")
    return joined.where(keys.notna(), buckets.astype("string")).astype("string")


def target_columns(targets: Sequence[Target | str], index: pd.Index) -> tuple[pd.Series, pd.Series]:
    """The bucket and key columns of concrete per-row targets (parsed here, at the edge)."""
    parts: list[tuple[str, str | None]] = []
    for target in targets:
        if isinstance(target, Target):
            parts.append((target.bucket, target.key))
        elif isinstance(target, str):
            parts.append(split_bucket_url(target))
        else:
            raise ConfigError(f"a target must be a Target or a 'bucket:key' string, not {target!r}")
    if len(parts) != len(index):
        raise ConfigError(f"one target per image ({len(index)}), not {len(parts)}")
    buckets = pd.Series([b for b, _ in parts], index=index, dtype="string")
    return buckets, pd.Series([k for _, k in parts], index=index, dtype="string")


# --- estate frames: each row's scope (region, project), the client that serves it, its lookups -------------

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
