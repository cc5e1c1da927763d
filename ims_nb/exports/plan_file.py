"""Plan files: the CSV an export plan is saved as and launched from, read and checked row by row."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ims_nb.errors import ConfigError
from ims_nb.vocab import FAST_EXPORT_FORMAT, FILE_FORMATS, Target

#: The columns a plan file must have (others, as ``ims-nb export --dry-run -o`` writes them, are ignored).
PLAN_FIELDS = ("image_id", "bucket_url", "file_format", "quick")
#: The columns an estate's plan adds (each row's region and project id); optional.
SCOPE_FIELDS = ("region", "project_id")
TRUE_WORDS = ("true", "t", "yes", "y", "1")
FALSE_WORDS = ("false", "f", "no", "n", "0")


@dataclass(frozen=True)
class PlanRow:
    """One row of a plan file: an image, its target and its mode (``line`` is where it is in the file)."""

    line: int
    image_id: str
    target: Target
    file_format: str | None
    quick: bool
    region: str | None = None
    project_id: str | None = None


def read_plan(path: Path) -> list[PlanRow]:
    """The rows of a plan file, every one checked.

    Raises:
        ConfigError: the file cannot be read, lacks a column, has no rows, or a row is invalid (named by line).
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(f"--plan {path}: {reason}") from None
    reader = csv.DictReader(io.StringIO(text))
    try:
        return _plan_rows(path, reader)
    except csv.Error as exc:  # a cell over csv.field_size_limit(), a broken quote in strict mode, ...
        raise ConfigError(f"--plan {path}, line {reader.line_num}: not readable as CSV ({exc})") from None


def _plan_rows(path: Path, reader: csv.DictReader[str]) -> list[PlanRow]:
    columns = [name.strip() for name in reader.fieldnames or ()]
    missing = [name for name in PLAN_FIELDS if name not in columns]
    if missing:
        raise ConfigError(f"--plan {path}: no column {', '.join(missing)}; a plan is CSV with the columns "
                          f"{', '.join(PLAN_FIELDS)}, as ims-nb export --dry-run -o plan.csv writes it")  # fmt: skip
    reader.fieldnames = columns
    rows: list[PlanRow] = []
    seen_ids: dict[str, int] = {}
    seen_targets: dict[str, int] = {}
    for record in reader:
        row = _plan_row(path, reader.line_num, record)
        for seen, value, what in ((seen_ids, row.image_id, "image"), (seen_targets, str(row.target), "target")):
            if value in seen:
                raise ConfigError(f"--plan {path}, line {row.line}: {what} {value} is also on line {seen[value]}; "
                                  "one export per image and per object")  # fmt: skip
            seen[value] = row.line
        rows.append(row)
    if not rows:
        raise ConfigError(f"--plan {path}: no rows")
    return rows


def _plan_row(path: Path, line: int, record: dict[str | Any, str | Any]) -> PlanRow:
    def fail(problem: str) -> ConfigError:
        return ConfigError(f"--plan {path}, line {line}: {problem}")

    if None in record:
        raise fail("more cells than columns")
    values = {name: (record.get(name) or "").strip() for name in PLAN_FIELDS}
    if not values["image_id"]:
        raise fail("image_id is empty")
    try:
        target = Target.parse(values["bucket_url"])
    except ConfigError:
        target = Target("", "")
    if not target.bucket or not target.key:
        raise fail(f"bucket_url must be BUCKET:KEY, not {values['bucket_url']!r}")
    if "{" in target.key or "}" in target.key:
        raise fail(f"bucket_url {values['bucket_url']!r} has template fields; a plan names each object")
    word = values["quick"].lower()
    if word not in TRUE_WORDS + FALSE_WORDS:
        raise fail(f"quick must be true or false, not {values['quick']!r}")
    quick = word in TRUE_WORDS
    file_format = values["file_format"].lower() or None
    if quick and file_format not in (None, FAST_EXPORT_FORMAT):
        raise fail(f"file_format {file_format} with quick true: fast export writes ZVHD2; leave file_format empty")
    if not quick and file_format not in FILE_FORMATS:
        shown = repr(file_format) if file_format else "empty"
        raise fail(f"file_format is {shown}: a normal export (quick false) needs one of {', '.join(FILE_FORMATS)}")
    region, project_id = ((record.get(name) or "").strip() or None for name in SCOPE_FIELDS)
    return PlanRow(line, values["image_id"], target, None if quick else file_format, quick, region, project_id)
