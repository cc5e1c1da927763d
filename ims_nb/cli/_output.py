"""DataFrames for the command line: an aligned text table, CSV, JSON records or Parquet, to stdout or a file."""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import shutil
import tempfile
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from ims_nb._extras import install_hint
from ims_nb.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd

LIST_SEPARATOR = ";"  # joins list cells (tags) in CSV
MISSING = "-"  # an empty cell in the table
GAP = "  "  # between table columns
ISO_SECONDS = "%Y-%m-%dT%H:%M:%SZ"
ISO_MICROSECONDS = "%Y-%m-%dT%H:%M:%S.%fZ"


class OutputFormat(StrEnum):
    TABLE = "table"
    CSV = "csv"
    JSON = "json"
    PARQUET = "parquet"


#: The formats of verbs that write text only (no Parquet).
TEXT_FORMATS = (OutputFormat.TABLE, OutputFormat.CSV, OutputFormat.JSON)


@dataclass(frozen=True)
class TableColumn:
    """One column of the text table.

    Attributes:
        column: the DataFrame column shown.
        label: its header.
        drop_order: when the terminal is too narrow, columns with the lowest value go first; None: never.
        min_width: how narrow the column may be cut (with an ellipsis); None: never cut.
        right: align right (numbers).
        show: how a present value is written (missing values are ``-``).
    """

    column: str
    label: str
    drop_order: int | None = None
    min_width: int | None = None
    right: bool = False
    show: Callable[[Any], str] = str


def add_output_options(group: argparse._ArgumentGroup, format_help: str) -> None:
    """``--output-format`` (a text format, or the extension of ``-o``) and ``-o FILE``."""
    group.add_argument(
        "--output-format", choices=[f.value for f in TEXT_FORMATS], default=None,
        help=format_help + "; with -o FILE.csv or FILE.json, the extension chooses",
    )  # fmt: skip
    group.add_argument("-o", "--output", type=Path, metavar="FILE", help="write to FILE instead of stdout")


def output_format_of(args: argparse.Namespace) -> OutputFormat:
    """``--output-format``, else the extension of ``-o`` (``.csv``, ``.json``), else the table."""
    if args.output_format:
        return OutputFormat(args.output_format)
    suffix = args.output.suffix.lower() if args.output is not None else ""
    return {".csv": OutputFormat.CSV, ".json": OutputFormat.JSON}.get(suffix, OutputFormat.TABLE)


def check_output(file_format: OutputFormat, output: Path | None) -> None:
    """Refuse, before any request, an output that cannot be written.

    Raises:
        ConfigError: ``-o`` names a folder or a file in a missing folder; Parquet without ``-o FILE``, or
            without pyarrow installed.
    """
    if output is not None and (output.is_dir() or not output.parent.is_dir()):
        problem = "is a folder" if output.is_dir() else "is in a folder that does not exist"
        raise ConfigError(f"-o {output}: {problem}")
    if file_format is OutputFormat.PARQUET:
        if output is None:
            raise ConfigError("--format parquet writes a file: give -o FILE")
        if importlib.util.find_spec("pyarrow") is None:
            raise ConfigError(f"--format parquet needs pyarrow: {install_hint('parquet')}")


def write_frame(
    frame: pd.DataFrame,
    file_format: OutputFormat,
    output: Path | None,
    stdout: TextIO,
    table: Sequence[TableColumn],
) -> None:
    """Write ``frame`` in ``file_format`` to ``output`` (replaced in one step) or to ``stdout``."""
    if file_format is OutputFormat.PARQUET:
        assert output is not None
        replace_file(output, lambda path: frame.to_parquet(path, index=False))
        return
    render_text(output, stdout, lambda stream, width: _write_text(frame, file_format, stream, table, width))


def render_text(output: Path | None, stdout: TextIO, render: Callable[[TextIO, int | None], None]) -> None:
    """``render(stream, width)`` to ``stdout`` at the terminal's width, or to ``output`` (UTF-8, no width limit,
    replaced in one step)."""
    if output is None:
        render(stdout, table_width(stdout))
        return

    def write(path: Path) -> None:
        with path.open("w", encoding="utf-8", newline="") as stream:
            render(stream, None)

    replace_file(output, write)


def yes_no(value: Any) -> str:
    """A flag as a table cell."""
    return "yes" if value else "no"


def table_width(stream: TextIO) -> int | None:
    """The terminal's width when writing to a terminal (or when ``$COLUMNS`` is set), else no limit."""
    if os.environ.get("COLUMNS") or stream.isatty():
        return shutil.get_terminal_size().columns
    return None


def _write_text(
    frame: pd.DataFrame, file_format: OutputFormat, stream: TextIO, table: Sequence[TableColumn], width: int | None
) -> None:
    if file_format is OutputFormat.CSV:
        plain_frame(frame, LIST_SEPARATOR).to_csv(stream, index=False, lineterminator="\n")
    elif file_format is OutputFormat.JSON:
        ascii_only = not speaks_utf(stream)
        lines = [json.dumps(record, ensure_ascii=ascii_only) for record in json_records(frame)]
        stream.write("[\n" + ",\n".join(lines) + "\n]\n" if lines else "[]\n")
    else:
        stream.writelines(line + "\n" for line in table_lines(frame, table, width, ellipsis_for(stream)))
    stream.flush()


def replace_file(path: Path, write: Callable[[Path], None]) -> None:
    """Write a temporary file next to ``path``, then rename it over ``path``: no half-written output."""
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    except OSError as exc:  # name the file asked for, not the temporary one
        raise OSError(exc.errno, exc.strerror, str(path)) from None
    os.close(handle)
    try:
        write(Path(temporary))
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


# --- CSV and JSON -------------------------------------------------------------------------------


def plain_frame(frame: pd.DataFrame, list_separator: str | None) -> pd.DataFrame:
    """Times as ISO 8601 UTC text (``2024-05-01T12:00:00Z``); list cells joined by ``list_separator`` if given."""
    plain = frame.copy()
    for name in frame.columns:
        column = frame[name]
        if column.dtype.kind == "M":
            plain[name] = iso_times(column)
        elif column.dtype == object and list_separator is not None:
            plain[name] = column.map(lambda value: _joined(value, list_separator))
    return plain


def iso_times(column: pd.Series) -> pd.Series:
    """ISO 8601 UTC text, with microseconds only when some instant of the column has them."""
    utc = column.dt.tz_convert("UTC") if column.dt.tz is not None else column.dt.tz_localize("UTC")
    fractional = ((utc.dt.microsecond != 0) | (utc.dt.nanosecond != 0)).fillna(False).any()
    return utc.dt.strftime(ISO_MICROSECONDS if fractional else ISO_SECONDS)


def json_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """One dict per row, of JSON values only: ISO times, lists, and None for every missing value."""
    plain = plain_frame(frame, None)
    columns = [str(name) for name in plain.columns]
    return [dict(zip(columns, map(_json_value, row), strict=True)) for row in plain.itertuples(index=False, name=None)]


def _is_list(value: Any) -> bool:
    return isinstance(value, list | tuple) or type(value).__name__ == "ndarray"


def _joined(value: Any, separator: str) -> Any:
    return separator.join(str(item) for item in value) if _is_list(value) else value


def _json_value(value: Any) -> Any:
    if _is_list(value):
        return [_json_value(item) for item in value]
    if value is None or type(value).__name__ in ("NAType", "NaTType"):
        return None
    if hasattr(value, "item") and not isinstance(value, str):  # a numpy scalar
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# --- the table ----------------------------------------------------------------------------------


def table_lines(frame: pd.DataFrame, table: Sequence[TableColumn], width: int | None, ellipsis: str = "…") -> list[str]:
    """The header and one line per row, columns dropped or cut to fit ``width`` (None: no limit)."""
    present = [spec for spec in table if spec.column in frame.columns]
    cells = {spec.column: [_cell(spec, value) for value in frame[spec.column]] for spec in present}
    natural = {spec.column: max([_width(spec.label), *map(_width, cells[spec.column])]) for spec in present}
    widths = _fit(present, natural, width)
    shown = [spec for spec in present if spec.column in widths]
    rows = [[spec.label for spec in shown]]
    rows += [[cells[spec.column][i] for spec in shown] for i in range(len(frame))]
    return [
        GAP.join(_pad(_cut(text, widths[spec.column], ellipsis), widths[spec.column], spec.right)
                 for spec, text in zip(shown, row, strict=True)).rstrip()
        for row in rows
    ]  # fmt: skip


def _cell(spec: TableColumn, value: Any) -> str:
    if _is_list(value):
        return ",".join(str(item) for item in value) or MISSING
    if value is None or type(value).__name__ in ("NAType", "NaTType") or (isinstance(value, float) and value != value):
        return MISSING
    return " ".join(spec.show(value).split())


def _fit(columns: Sequence[TableColumn], natural: dict[str, int], width: int | None) -> dict[str, int]:
    """Column widths: drop columns (by ``drop_order``) until the narrowest layout fits, then widen cut ones."""
    if width is None:
        return dict(natural)
    kept = list(columns)

    def floor(spec: TableColumn) -> int:
        return natural[spec.column] if spec.min_width is None else min(natural[spec.column], spec.min_width)

    def total(widths: Sequence[int]) -> int:
        return sum(widths) + len(GAP) * (len(widths) - 1)

    droppable = sorted((spec for spec in kept if spec.drop_order is not None), key=lambda spec: spec.drop_order or 0)
    while droppable and total([floor(spec) for spec in kept]) > width:
        kept.remove(droppable.pop(0))
    widths = {spec.column: floor(spec) for spec in kept}
    spare = width - total(list(widths.values()))
    for spec in kept:
        grow = min(max(spare, 0), natural[spec.column] - widths[spec.column])
        widths[spec.column] += grow
        spare -= grow
    return widths


def _width(text: str) -> int:
    """Columns a text takes on a terminal: East Asian wide and full-width characters take two."""
    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)


def _cut(text: str, width: int, ellipsis: str) -> str:
    if _width(text) <= width:
        return text
    room = width - _width(ellipsis)
    kept = ""
    for char in text:
        if _width(kept + char) > room:
            break
        kept += char
    return kept + ellipsis


def _pad(text: str, width: int, right: bool) -> str:
    fill = " " * max(0, width - _width(text))
    return fill + text if right else text + fill


def speaks_utf(stream: TextIO) -> bool:
    return (getattr(stream, "encoding", None) or "utf-8").lower().replace("-", "").startswith("utf")


def ellipsis_for(stream: TextIO) -> str:
    return "…" if speaks_utf(stream) else "~"
