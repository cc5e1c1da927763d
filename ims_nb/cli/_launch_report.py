"""How ``ims-nb export`` shows a plan and a launch report: the tables, the preflight messages under them, the
totals line and the exit code."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from ims_nb.cli._console import EXIT_FAILED, EXIT_OK, EXIT_REFUSED
from ims_nb.cli._output import (
    OutputFormat,
    TableColumn,
    ellipsis_for,
    render_text,
    table_lines,
    write_frame,
    yes_no,
)
from ims_nb.vocab import FAST_EXPORT_FORMAT, Action, Outcome

if TYPE_CHECKING:
    import pandas as pd

#: What --dry-run says a launch would do (``Ledger.decide``), and what the launch report says came of it.
LAUNCH, SKIP, REFUSED = Action.LAUNCH, Action.SKIP, Action.REFUSED
LAUNCHED, SKIPPED, NOT_STARTED, UNKNOWN = Outcome.LAUNCHED, Outcome.SKIPPED, Outcome.NOT_STARTED, Outcome.UNKNOWN

#: --dry-run's table; the narrowest terminal still shows id, exportable, action and the blocking rules.
PLAN_TABLE = (
    TableColumn("image_id", "ID"),
    TableColumn("name", "NAME", drop_order=4, min_width=12),
    TableColumn("bucket_url", "TARGET", drop_order=2, min_width=20),
    TableColumn("mode", "FORMAT", drop_order=3),
    TableColumn("exportable", "EXPORTABLE", show=yes_no),
    TableColumn("blocking", "BLOCKING", min_width=16),
    TableColumn("warnings", "WARNINGS", drop_order=5, min_width=16),
    TableColumn("action", "ACTION"),
    TableColumn("reason", "REASON", drop_order=1, min_width=20),
)
#: The launch report's table.
REPORT_TABLE = (
    TableColumn("image_id", "ID"),
    TableColumn("name", "NAME", drop_order=3, min_width=12),
    TableColumn("bucket_url", "TARGET", drop_order=1, min_width=20),
    TableColumn("action", "ACTION"),
    TableColumn("state", "STATE", drop_order=4),
    TableColumn("job_id", "JOB", drop_order=2),
    TableColumn("reason", "REASON", min_width=20),
)
#: The preflight messages under either table, never cut: the message is the point.
MESSAGE_TABLE = (TableColumn("image_id", "ID"), TableColumn("message", "MESSAGE"))


def exit_code(report: pd.DataFrame) -> int:
    actions = set(report["action"])
    if actions & {NOT_STARTED, UNKNOWN}:
        return EXIT_FAILED
    return EXIT_REFUSED if REFUSED in actions else EXIT_OK


def _count(report: pd.DataFrame, action: str) -> int:
    return int((report["action"] == action).sum())


def _images(count: int) -> str:
    return f"{count} image" + ("" if count == 1 else "s")


def dry_run_totals(report: pd.DataFrame) -> str:
    return (f"{_images(len(report))}: {_count(report, LAUNCH)} to launch, {_count(report, SKIP)} skipped (live or "
            f"done in the ledger), {_count(report, REFUSED)} refused; nothing was sent (--dry-run)")  # fmt: skip


def launch_totals(report: pd.DataFrame) -> str:
    text = (f"{_images(len(report))}: {_count(report, LAUNCHED)} launched, {_count(report, SKIPPED)} skipped (live "
            f"or done in the ledger), {_count(report, REFUSED)} refused")  # fmt: skip
    for action in (NOT_STARTED, UNKNOWN):
        if _count(report, action):
            text += f", {_count(report, action)} {action}"
    return text


# --- output -----------------------------------------------------------------------------------------


def write_report(
    report: pd.DataFrame,
    table: tuple[TableColumn, ...],
    output_format: OutputFormat,
    output: Path | None,
    *,
    all_messages: bool,
) -> None:
    """CSV and JSON: every column. The table: the main columns, then the preflight messages (of every image
    with ``all_messages``, else of the refused ones)."""
    if output_format is not OutputFormat.TABLE:
        write_frame(report, output_format, output, sys.stdout, table)
        return

    def render(stream: TextIO, width: int | None) -> None:
        stream.writelines(line + "\n" for line in _table_text(report, table, width, stream, all_messages))
        stream.flush()

    render_text(output, sys.stdout, render)


def _table_text(
    report: pd.DataFrame, table: tuple[TableColumn, ...], width: int | None, stream: TextIO, all_messages: bool
) -> list[str]:
    import pandas as pd

    mode = [FAST_EXPORT_FORMAT + " (fast)" if quick else file_format for quick, file_format in
            zip(report["quick"], report["file_format"], strict=True)]  # fmt: skip
    lines = table_lines(report.assign(mode=mode), table, width, ellipsis_for(stream))
    shown = report if all_messages else report[report["action"] == REFUSED]
    messages = [(image_id, message) for image_id, found in zip(shown["image_id"], shown["messages"], strict=True)
                for message in (found if isinstance(found, list) else [])]  # fmt: skip
    if not messages:
        return lines
    frame = pd.DataFrame(messages, columns=["image_id", "message"])
    return [*lines, "", *table_lines(frame, MESSAGE_TABLE, None)]
