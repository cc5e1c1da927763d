"""Where coverage finds exports: the buckets' listing, and the image each key the ledger does not know names."""

from __future__ import annotations

import logging
import re
import string
from collections import Counter
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pandas as pd  # type: ignore[import-untyped, unused-ignore]

from ims_nb.client.obs_listing import objects_frame
from ims_nb.coverage_status import Export
from ims_nb.errors import ApiError
from ims_nb.targets import check_key_template, expand_keys
from ims_nb.vocab import Target

if TYPE_CHECKING:
    from ims_nb.client.protocol import ClientLike

__all__ = ["key_pattern", "list_objects", "match_keys", "outside_exports"]

log = logging.getLogger("ims_nb")
#: What the inverted key template captures of each field (``{region}``, ``{project}`` and others: any segment).
_FIELD_PATTERNS = {"id": r"[0-9A-Za-z-]+", "id8": r"[0-9A-Za-z-]{8}", "name": r"[A-Za-z0-9._-]+?",
                   "platform": r"[A-Za-z0-9._-]+?", "ext": r"[A-Za-z0-9]+", "format": r"[A-Za-z0-9]+"}  # fmt: skip
_UUID = re.compile(r"[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")
_ID8 = re.compile(r"(?<![0-9A-Za-z])[0-9a-fA-F]{8}(?![0-9A-Za-z])")


def list_objects(where: Mapping[str, tuple[str | None, ClientLike]]) -> pd.DataFrame:
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


def outside_exports(unknown: pd.DataFrame, images: pd.DataFrame, template: str) -> dict[str, list[Export]]:
    """The objects the ledger does not know, by the image (of ``images``) their key names."""
    found: dict[str, list[Export]] = {}
    for image_id, bucket, key, at in zip(match_keys(unknown["key"], images, template), unknown["bucket"],
                                         unknown["key"], unknown["last_modified"], strict=True):  # fmt: skip
        if image_id is not pd.NA:
            found.setdefault(image_id, []).append(Export(at, Target(bucket, key).bucket_url, _extension(key), False))
    return found


def _extension(key: str) -> str | None:
    _, dot, extension = key.rpartition(".")
    return extension or None if dot else None


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
