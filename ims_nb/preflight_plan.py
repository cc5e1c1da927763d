"""The plan ``preflight`` judges: the images frame from what was given, with a target per row."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ims_nb.client.protocol import LookupLike

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped, unused-ignore]

from ims_nb.errors import ConfigError
from ims_nb.frames import IMAGE_COLUMNS, images_frame
from ims_nb.rules import bucket_url_problems
from ims_nb.targets import BucketsLike, bucket_urls, expand_buckets, expand_keys, scope_column, target_columns
from ims_nb.vocab import FAST_EXPORT_EXTENSION, Target, split_bucket_url

#: The images-frame columns the rules, messages and key templates read (a frame passed in must have them).
IMAGE_RULE_COLUMNS = ("id", "name", "status", "platform", "image_type", "visibility", "owner", "virtual_env_type",
                      "whole_image", "encrypted", "kms_key_id", "source_image_id", "product_code", "size_bytes",
                      "size_gb")  # fmt: skip


def as_images_frame(images: Any, client: LookupLike | None = None) -> pd.DataFrame:
    """The images frame from a frame, a list of raw records, or a list of image ids (looked up via ``client``)."""
    if isinstance(images, pd.DataFrame):
        return _checked_frame(images)
    if isinstance(images, str | Mapping):
        images = [images]
    try:
        items = list(images)
    except TypeError:
        raise ConfigError(
            f"images must be a DataFrame, a list of image records, or a list of image ids, not {type(images).__name__}"
        ) from None
    if all(isinstance(item, str) for item in items) and items:
        if client is None:
            raise ConfigError("image ids need a client to look them up: preflight(ids, ..., client=client)")
        return images_frame([client.image(image_id) for image_id in items])
    if not all(isinstance(item, Mapping) for item in items):
        raise ConfigError("images must be a DataFrame, a list of image records, or a list of image ids")
    return images_frame(items)


def _checked_frame(images: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in IMAGE_RULE_COLUMNS if c not in images.columns]
    if missing:
        raise ConfigError(f"the images frame lacks column(s) {', '.join(missing)}; use client.images()")
    try:
        return images.reset_index(drop=True).astype({c: IMAGE_COLUMNS[c] for c in IMAGE_RULE_COLUMNS})
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"the images frame has a column of the wrong type ({exc}); use client.images()") from None


def build_plan(
    frame: pd.DataFrame,
    *,
    bucket_url: str | None = None,
    targets: Sequence[Target | str] | None = None,
    file_format: str | None | Sequence[str | None],
    quick: bool | Sequence[bool],
    region: str | None,
    project_id: str | None,
    bucket: BucketsLike | None = None,
    key_template: str | None = None,
) -> pd.DataFrame:
    """The images with their target: bucket, key, format and fast-export choice per row.

    The target is ``bucket_url`` (``bucket:key``, the key a template, one object per image), or ``bucket`` (a
    name, a template or region -> bucket) with ``key_template``, or ``targets`` (one concrete target per row, a
    ``Target`` or a ``bucket:key`` string); a string without ``:`` is planned with no key (rule
    ``bucket-url-invalid``). An estate frame's rows keep their own ``region`` and ``project_id``.
    """
    given = bucket_url if bucket is None else ""
    check_arguments(given, targets, quick if isinstance(quick, bool | np.bool_) else False, region)
    plan = frame.copy()
    plan["region"] = scope_column(frame, "region", region)
    plan["project_id"] = scope_column(frame, "project_id", project_id)
    plan["quick"] = bool(quick) if isinstance(quick, bool | np.bool_) else _per_row_quick(quick, len(plan))
    plan["file_format"] = _per_row_format(file_format, plan.index)
    extension = plan["file_format"].where(~plan["quick"], FAST_EXPORT_EXTENSION).fillna("").astype(str)
    if targets is None:
        bucket, template = split_bucket_url(str(bucket_url)) if bucket is None else (bucket, key_template)
        plan["bucket"] = expand_buckets(plan, bucket)
        keys = None if template is None else expand_keys(plan, template, extension)
        plan["key"] = keys if keys is not None else pd.Series(pd.NA, index=plan.index, dtype="string")
    else:
        plan["bucket"], plan["key"] = target_columns(targets, plan.index)
    plan["bucket_url"] = bucket_urls(plan["bucket"], plan["key"])
    plan["bucket_url_code"], plan["bucket_url_problem"] = bucket_url_problems(plan["bucket"], plan["key"])
    plan["expected_extension"] = extension
    for column, dtype in (
        ("bucket_exists", "boolean"),
        ("bucket_region", "string"),
        ("bucket_class", "string"),
        ("object_exists", "boolean"),
        ("exporting", "boolean"),
        ("exporting_job", "string"),
    ):
        plan[column] = pd.Series(pd.NA, index=plan.index, dtype=dtype)  # fmt: skip
    return plan


def _per_row_format(file_format: Any, index: pd.Index) -> pd.Series:
    """The format column from one format (or None) for every row, or one per row."""
    if file_format is None or isinstance(file_format, str):
        return pd.Series(file_format, index=index, dtype="string")
    per_row = isinstance(file_format, Sequence) and len(file_format) == len(index)
    if per_row and all(f is None or isinstance(f, str) for f in file_format):
        return pd.Series(list(file_format), index=index, dtype="string")
    raise ConfigError(f"file_format must be a string, None or one per image, not {file_format!r}")


def check_arguments(bucket_url: Any, targets: Any, quick: Any, region: Any) -> None:
    """ConfigError unless the target (``bucket_url`` or ``targets``, not both), ``quick`` and ``region`` are usable."""
    if targets is None and not isinstance(bucket_url, str):
        raise ConfigError(f"bucket_url must be a string 'bucket:key-or-template', not {type(bucket_url).__name__}")
    if targets is not None and (bucket_url is not None or isinstance(targets, str | Mapping)):
        raise ConfigError("give bucket_url (one key template) or targets (one target per image), not both")
    if not isinstance(quick, bool | np.bool_):
        raise ConfigError(f"quick must be True or False, not {quick!r}")
    if region is not None and not isinstance(region, str):
        raise ConfigError(f"region must be a region id or None, not {region!r}")


def _per_row_quick(quick: Any, rows: int) -> Any:
    """One fast-export choice per row, from a sequence of booleans."""
    try:
        values = list(quick)
    except TypeError:
        raise ConfigError(f"quick must be True, False or one boolean per image, not {quick!r}") from None
    if len(values) != rows or not all(isinstance(v, bool | np.bool_) for v in values):
        raise ConfigError(f"quick must be True, False or one boolean per image ({rows}), not {quick!r}")
    return np.array(values, dtype=bool)
