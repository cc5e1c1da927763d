"""``ims-nb export``: plan exports (targets, formats, preflight verdicts), launch each once through the ledger,
and follow them with ``--watch``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from ims_nb.cli._connect import connect_from_args, images_by_id
from ims_nb.cli._console import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_REFUSED, Console, run_client_verb
from ims_nb.cli._follow import follow, state_counts
from ims_nb.cli._options import (
    HelpFormatter,
    add_connection_options,
    add_filter_options,
    add_ledger_option,
    add_watch_options,
    filters_from_args,
    ledger_path,
    positive_seconds,
)
from ims_nb.cli._output import (
    OutputFormat,
    TableColumn,
    add_output_options,
    check_output,
    ellipsis_for,
    output_format_of,
    replace_file,
    table_lines,
    table_width,
    write_frame,
    yes_no,
)
from ims_nb.cli._progress import add_progress_options
from ims_nb.cli._verbs import VERBS
from ims_nb.errors import ConfigError
from ims_nb.exports.plan_file import PlanRow, read_plan
from ims_nb.vocab import DEFAULT_KEY_TEMPLATE, FAST_EXPORT_FORMAT, FILE_FORMATS, Action, Outcome

if TYPE_CHECKING:
    import pandas as pd

    from ims_nb.client.protocol import ClientLike


DEFAULT_CONCURRENCY = 4
DEFAULT_MAX_RATE = 5.0
#: What --dry-run says a launch would do (``Ledger.decide``), and what the launch report says came of it.
LAUNCH, SKIP, REFUSED = Action.LAUNCH, Action.SKIP, Action.REFUSED
LAUNCHED, SKIPPED, NOT_STARTED, UNKNOWN = Outcome.LAUNCHED, Outcome.SKIPPED, Outcome.NOT_STARTED, Outcome.UNKNOWN

DESCRIPTION = """\
Export images to OBS (POST /v1/cloudimages/{image_id}/file), each at most once. The images are the \
IMAGE_IDs given, or those the listing filters select, or the rows of a --plan file. Each is judged by \
preflight first (the rules of ims-nb preflight); refused ones are not sent. Every export is written to the \
ledger before it is sent, so an export that is live or done in the ledger is skipped (--force sends it \
again), a lost answer is reconciled before anything is sent again, and running the same command twice \
launches nothing the second time.

--dry-run prints the plan (target, format, exportable, blocking rules, warnings, the messages, and what \
export would do) and sends nothing; with -o plan.csv it writes the plan, which --plan plan.csv launches \
later (each row judged again). Otherwise the report says what was launched (with its job id), what was \
skipped and why, and what was refused and why; --watch then follows the jobs like ims-nb jobs --watch."""
EPILOG = """\
examples:
  ims-nb export --imagetype private --status active --bucket my-bucket --format qcow2 --dry-run -o plan.csv
  ims-nb export --plan plan.csv --watch
  ims-nb export 1f34a6d9-115b-44b2-9c58-2736820a464a --bucket my-bucket --key-template 'exports/{id}.{ext}' --auto
  ims-nb export --platform Ubuntu --bucket my-bucket --quick --concurrency 8 --max-rate 2 --watch

Key template fields: {name} and {platform} (runs of characters outside A-Za-z0-9._- become -), {id}, \
{id8} (its first 8 characters), {ext} and {format} (the file format; zvhd2 with fast export). Two images \
may not get the same key.

A plan file is CSV with the columns image_id, bucket_url (BUCKET:KEY, no template fields), file_format \
(qcow2, vhd, zvhd or vmdk; empty for fast export) and quick (true or false); other columns are ignored. \
--dry-run -o plan.csv writes one.

Report actions: launched (job id given), skipped (live or done in the ledger), refused (by preflight, or \
by the service; a refusal in the ledger stands until --force), not started (flow control, throttling or \
a request that never left: run again), unknown (the answer was lost: settled by the next export or \
ims-nb jobs --watch). A totals line goes to stderr.

Exit codes: 0 everything exportable was launched or is live or done already, 3 some selected image was \
refused, 1 the service or the network failed (also: an export not started or with an unknown outcome, \
and with --watch an export that ended failed or missing), 2 bad arguments or configuration (a bad plan \
file, an IMAGE_ID that does not exist), 130 Ctrl-C (launched jobs go on in the cloud)."""


def _bucket(text: str) -> str:
    if not text or ":" in text or "/" in text:
        raise argparse.ArgumentTypeError(f"expected a bucket name (the object key goes in --key-template), "
                                         f"not {text!r}")  # fmt: skip
    return text


def _concurrency(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 1 <= value <= 32:
        raise argparse.ArgumentTypeError(f"must be 1 to 32, not {value}")
    return value


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


def add_export_parser(verbs: Any) -> None:
    """Register ``export`` on ``verbs``, the ``ims-nb`` parser's sub-parsers (an argparse private type)."""
    parser: argparse.ArgumentParser = verbs.add_parser(
        "export", help=VERBS["export"].help,
        description=DESCRIPTION, epilog=EPILOG, formatter_class=HelpFormatter,
    )  # fmt: skip
    parser.add_argument(
        "image_ids", nargs="*", metavar="IMAGE_ID", help="images to export (or: the listing filters, or --plan)"
    )
    target = parser.add_argument_group("target and mode (without --plan)")
    target.add_argument("--bucket", type=_bucket, metavar="B", help="the OBS bucket (required without --plan)")
    target.add_argument(
        "--key-template", metavar="T",
        help=f"the object key of each image (default {DEFAULT_KEY_TEMPLATE}; fields below)",
    )  # fmt: skip
    target.add_argument(
        "--format", dest="file_format", choices=FILE_FORMATS,
        help="normal export to this file format (with --auto: for the images exported normally)",
    )  # fmt: skip
    mode = target.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="fast export of every image (the file is ZVHD2)")
    mode.add_argument(
        "--auto", action="store_true",
        help="fast export where an image needs it (over 128 GiB) and allows it (not encrypted), normal export in "
        "--format (default qcow2) otherwise",
    )  # fmt: skip
    planning = parser.add_argument_group("plan")
    planning.add_argument(
        "--plan", type=Path, metavar="FILE.csv", help="export the rows of this plan file, each judged again (see below)"
    )
    planning.add_argument(
        "--dry-run", action="store_true",
        help="print the plan with the preflight verdicts and what would be done; send nothing",
    )  # fmt: skip
    launching = parser.add_argument_group("launch")
    add_ledger_option(launching)
    launching.add_argument(
        "--force", action="store_true", help="send again exports the ledger has as live, done or refused"
    )
    launching.add_argument(
        "--concurrency", type=_concurrency, default=DEFAULT_CONCURRENCY, metavar="N",
        help=f"at most N exports being sent at once (1-32, default {DEFAULT_CONCURRENCY})",
    )  # fmt: skip
    launching.add_argument(
        "--max-rate", type=positive_seconds, default=DEFAULT_MAX_RATE, metavar="R",
        help=f"at most R exports started per second (default {DEFAULT_MAX_RATE:g})",
    )  # fmt: skip
    add_watch_options(launching, "then follow the jobs to their end, like ims-nb jobs --watch")
    add_filter_options(parser, "filters (instead of IMAGE_IDs; documented listing filters)")
    output = parser.add_argument_group("output")
    add_output_options(output, "table (default), csv or json (every column: with --dry-run the plan, which --plan "
                               "reads back; else the report)")  # fmt: skip
    add_progress_options(parser, "the job bars of --watch")
    add_connection_options(parser)
    parser.set_defaults(run=run_export)


def run_export(args: argparse.Namespace, stderr: TextIO | None = None) -> int:
    """The ``export`` verb, with its errors turned into one-line messages and exit codes."""
    return run_client_verb(args, _export, stderr)


# --- arguments and plan files ---------------------------------------------------------------------


def check_selection(args: argparse.Namespace, filters: dict[str, Any]) -> None:
    """Exactly one way of choosing images, and (without ``--plan``) a bucket and a mode.

    Raises:
        ConfigError: what is missing or does not go together, in one sentence.
    """
    has_filters = bool(filters) or args.max_items is not None
    if args.watch and args.dry_run:
        raise ConfigError("--dry-run launches nothing to --watch")
    if args.plan is not None:
        given = [name for name, present in (
            ("IMAGE_IDs", bool(args.image_ids)), ("filters", has_filters), ("--bucket", args.bucket is not None),
            ("--key-template", args.key_template is not None), ("--format", args.file_format is not None),
            ("--quick", args.quick), ("--auto", args.auto)) if present]  # fmt: skip
        if given:
            raise ConfigError(f"--plan brings its own images, targets and formats: leave out {', '.join(given)}")
        return
    if args.image_ids and has_filters:
        raise ConfigError("give IMAGE_IDs or listing filters, not both")
    if not args.image_ids and not has_filters:
        raise ConfigError("choose the images: IMAGE_IDs, listing filters (e.g. --imagetype private --status active) "
                          "or --plan FILE.csv")  # fmt: skip
    if args.bucket is None:
        raise ConfigError("--bucket is required (without --plan)")
    if not (args.file_format or args.quick or args.auto):
        raise ConfigError("choose the mode: --format F (normal export), --quick (fast export) or --auto (fast "
                          "export where needed)")  # fmt: skip
    if args.quick and args.file_format:
        raise ConfigError("--quick writes ZVHD2 and takes no --format (--auto --format F: fast export where needed, "
                          "F otherwise)")  # fmt: skip


# --- the verb -------------------------------------------------------------------------------------


def _export(args: argparse.Namespace, console: Console) -> int:
    try:
        from ims_nb.exports.launch import launch_report
        from ims_nb.exports.ledger import ledger_for
        from ims_nb.targets import check_key_template
    except ImportError as exc:
        raise ConfigError(f"ims-nb export needs {exc.name}: pip install 'ims-nb[lab]'") from None
    filters = filters_from_args(args)
    check_selection(args, filters)
    plan_rows = read_plan(args.plan) if args.plan is not None else None
    if plan_rows is None:
        check_key_template(args.key_template if args.key_template is not None else DEFAULT_KEY_TEMPLATE)
    output_format = output_format_of(args)
    check_output(output_format, args.output)
    ledger_path(args)  # a bad --ledger is refused before connecting
    with connect_from_args(args, console) as client:
        path = ledger_path(args, client)  # a simulator's exports go to its own ledger, never the real one
        plan = _plan(client, args, filters, plan_rows)
        if args.dry_run:
            report = _dry_run(plan, client, path, args.force)
            _write(report, PLAN_TABLE, output_format, args.output, all_messages=True)
            console.notice(_dry_run_totals(report))
            return EXIT_REFUSED if (report["action"] == REFUSED).any() else EXIT_OK
        with ledger_for(client, path) as ledger:
            try:
                report = launch_report(plan, client=client, ledger=ledger, force=args.force,
                                       concurrency=args.concurrency, max_rate=args.max_rate)  # fmt: skip
            except KeyboardInterrupt:
                console.error("interrupted while launching: the exports already sent go on in the cloud; the ledger "
                              "settles any in doubt on the next run")  # fmt: skip
                return EXIT_INTERRUPTED
            _write(report, REPORT_TABLE, output_format, args.output, all_messages=False)
            console.notice(_launch_totals(report))
            code = _exit_code(report)
            if args.watch:
                frame, interrupted = follow(ledger, client, args, console)
                if interrupted:
                    return EXIT_INTERRUPTED
                mine = frame[frame["row_id"].isin(report.loc[report["action"] == LAUNCHED, "row_id"].dropna())]
                console.notice(state_counts(mine, "launched export"))
                if mine["state"].isin(["failed", "missing"]).any():
                    code = EXIT_FAILED
    return code


def _plan(
    client: ClientLike, args: argparse.Namespace, filters: dict[str, Any], plan_rows: list[PlanRow] | None
) -> pd.DataFrame:
    """The plan of the selection (bucket, key template, mode), or of a plan file's rows taken as they are."""
    from ims_nb.exports.plan import plan_exports

    if plan_rows is not None:
        records = images_by_id(client, [row.image_id for row in plan_rows])
        return plan_exports(records, targets={row.image_id: row.target for row in plan_rows},
                            file_format=[row.file_format for row in plan_rows],
                            quick=[row.quick for row in plan_rows], client=client)  # fmt: skip
    if args.image_ids:
        records = images_by_id(client, list(dict.fromkeys(args.image_ids)))
    else:
        records = list(client.iter_images(max_items=args.max_items, **filters))
    quick: bool | str = True if args.quick else "auto" if args.auto else False
    return plan_exports(records, bucket=args.bucket, key_template=args.key_template, quick=quick,
                        file_format=args.file_format or "qcow2", client=client)  # fmt: skip


def _dry_run(plan: pd.DataFrame, client: ClientLike, path: Path, force: bool) -> pd.DataFrame:
    """The plan with what a launch would do with each row (no ledger file yet: nothing is in it)."""
    from ims_nb.exports.decisions import decide_rows
    from ims_nb.exports.ledger import ledger_for

    if not path.exists():
        decisions = decide_rows(plan, [], force=force)
    else:
        with ledger_for(client, path) as ledger:  # the rows of the client's account
            decisions = ledger.decide(plan, force=force)
    return plan.assign(action=decisions["action"], reason=decisions["reason"])


def _exit_code(report: pd.DataFrame) -> int:
    actions = set(report["action"])
    if actions & {NOT_STARTED, UNKNOWN}:
        return EXIT_FAILED
    return EXIT_REFUSED if REFUSED in actions else EXIT_OK


def _count(report: pd.DataFrame, action: str) -> int:
    return int((report["action"] == action).sum())


def _images(count: int) -> str:
    return f"{count} image" + ("" if count == 1 else "s")


def _dry_run_totals(report: pd.DataFrame) -> str:
    return (f"{_images(len(report))}: {_count(report, LAUNCH)} to launch, {_count(report, SKIP)} skipped (live or "
            f"done in the ledger), {_count(report, REFUSED)} refused; nothing was sent (--dry-run)")  # fmt: skip


def _launch_totals(report: pd.DataFrame) -> str:
    text = (f"{_images(len(report))}: {_count(report, LAUNCHED)} launched, {_count(report, SKIPPED)} skipped (live "
            f"or done in the ledger), {_count(report, REFUSED)} refused")  # fmt: skip
    for action in (NOT_STARTED, UNKNOWN):
        if _count(report, action):
            text += f", {_count(report, action)} {action}"
    return text


# --- output -----------------------------------------------------------------------------------------


def _write(
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

    if output is None:
        render(sys.stdout, table_width(sys.stdout))
        return

    def write(path: Path) -> None:
        with path.open("w", encoding="utf-8", newline="") as stream:
            render(stream, None)

    replace_file(output, write)


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
