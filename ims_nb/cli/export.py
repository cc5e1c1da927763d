"""``ims-nb export``: plan exports (targets, formats, preflight verdicts), launch each once through the ledger,
and follow them with ``--watch``."""

from __future__ import annotations

import argparse
import csv
import io
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from ims_nb.cli._connect import LookupOnce, connect_from_args, images_by_id
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
from ims_nb.vocab import BLOCKING, DEFAULT_KEY_TEMPLATE, FAST_EXPORT_FORMAT, FILE_FORMATS, TRANSIENT_REFUSALS
from ims_nb.vocab import LIVE as LIVE_STATES

if TYPE_CHECKING:
    import pandas as pd

    from ims_nb.exports.ledger import Ledger

DEFAULT_CONCURRENCY = 4
DEFAULT_MAX_RATE = 5.0
PLAN_FIELDS = ("image_id", "bucket_url", "file_format", "quick")
#: The key template fields a plan file's keys are matched against ({format} is {ext}), longest values first.
TEMPLATE_FIELDS = ("id", "name", "platform", "id8", "ext")
TRUE_WORDS = ("true", "t", "yes", "y", "1")
FALSE_WORDS = ("false", "f", "no", "n", "0")
#: ``ims_nb.exports.ledger.TRANSIENT_REFUSALS`` is read at run time; these are the actions a row of the report can show.
LAUNCH, SKIP, REFUSED = "launch", "skip", "refused"  # --dry-run (and the plan before it is launched)
LAUNCHED, SKIPPED, NOT_STARTED, UNKNOWN = "launched", "skipped", "not started", "unknown"
#: Ledger rows that are not final (``ims_nb.exports.ledger.LIVE``).
LIVE = frozenset(LIVE_STATES)

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
REPORT_COLUMNS = ("image_id", "name", "bucket_url", "file_format", "quick", "action", "state", "row_id", "job_id",
                  "reason", "exportable", "blocking", "warnings", "messages")  # fmt: skip


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


@dataclass(frozen=True)
class PlanRow:
    """One row of a plan file: an image, its target and its mode (``line`` is where it is in the file)."""

    line: int
    image_id: str
    bucket: str
    key: str
    file_format: str | None
    quick: bool

    @property
    def bucket_url(self) -> str:
        return f"{self.bucket}:{self.key}"


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
        for seen, value, what in ((seen_ids, row.image_id, "image"), (seen_targets, row.bucket_url, "target")):
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
    bucket, sep, key = values["bucket_url"].partition(":")
    if not sep or not bucket or not key:
        raise fail(f"bucket_url must be BUCKET:KEY, not {values['bucket_url']!r}")
    if "{" in key or "}" in key:
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
    return PlanRow(line, values["image_id"], bucket, key, None if quick else file_format, quick)


# --- the verb -------------------------------------------------------------------------------------


def _export(args: argparse.Namespace, console: Console) -> int:
    try:
        from ims_nb.exports.ledger import ledger_for
        from ims_nb.preflight import check_key_template
    except ImportError as exc:
        raise ConfigError(f"ims-nb export needs {exc.name}: pip install 'ims-nb[lab]'") from None
    filters = filters_from_args(args)
    check_selection(args, filters)
    plan_rows = read_plan(args.plan) if args.plan is not None else None
    key_template = args.key_template if args.key_template is not None else DEFAULT_KEY_TEMPLATE
    if plan_rows is None:
        check_key_template(key_template)
    output_format = output_format_of(args)
    check_output(output_format, args.output)
    ledger_path(args)  # a bad --ledger is refused before connecting
    with connect_from_args(args, console) as client:
        path = ledger_path(args, client)  # a simulator's exports go to its own ledger, never the real one
        if plan_rows is not None:
            plan = _plan_of_rows(client, plan_rows)
        else:
            plan = _plan_of_selection(client, args, filters, key_template)
        if args.dry_run:
            prior = _ledger_rows(path, client) if path.exists() else []
            report = _dry_run(plan, prior, args.force)
            _write(report, PLAN_TABLE, output_format, args.output, all_messages=True)
            console.notice(_dry_run_totals(report))
            return EXIT_REFUSED if (report["action"] == REFUSED).any() else EXIT_OK
        with ledger_for(client, path) as ledger:
            try:
                report = _launch(plan, client, ledger, args)
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


def _plan_of_selection(
    client: Any, args: argparse.Namespace, filters: dict[str, Any], key_template: str
) -> pd.DataFrame:
    from ims_nb.exports.plan import plan_exports

    if args.image_ids:
        records = images_by_id(client, list(dict.fromkeys(args.image_ids)))
    else:
        records = list(client.iter_images(max_items=args.max_items, **filters))
    quick: bool | str = True if args.quick else "auto" if args.auto else False
    return plan_exports(records, bucket=args.bucket, key_template=key_template, file_format=args.file_format or "qcow2",
                        quick=quick, client=LookupOnce(client))  # fmt: skip


def _plan_of_rows(client: Any, rows: list[PlanRow]) -> pd.DataFrame:
    """The plan of a plan file, each row judged now as ``plan_exports`` judges it.

    Rows that share a bucket and a mode, and whose keys one key template gives (as a --dry-run plan's do),
    are judged in one call; the template is inferred from a row's key and checked against every other key.
    """
    import pandas as pd

    from ims_nb.exports.plan import plan_exports
    from ims_nb.preflight import as_images_frame, expand_keys

    records = {record["id"]: record for record in images_by_id(client, [row.image_id for row in rows])}
    lookups = LookupOnce(client)
    groups: dict[tuple[str, str | None, bool], list[PlanRow]] = {}
    for row in rows:
        groups.setdefault((row.bucket, row.file_format, row.quick), []).append(row)
    plans = []
    for (bucket, file_format, quick), pending in groups.items():
        extension = file_format or FAST_EXPORT_FORMAT
        while pending:
            frame = as_images_frame([records[row.image_id] for row in pending])
            ext = pd.Series(extension, index=frame.index, dtype="string")
            values = {name: str(expand_keys(frame.iloc[:1], "{" + name + "}", ext.iloc[:1]).iloc[0])
                      for name in TEMPLATE_FIELDS}  # fmt: skip
            template = _template_of(pending[0].key, values)
            keys = expand_keys(frame, template, ext).tolist()
            batch = [row for row, key in zip(pending, keys, strict=True) if key == row.key]
            pending = [row for row, key in zip(pending, keys, strict=True) if key != row.key]
            plans.append(plan_exports([records[row.image_id] for row in batch], bucket=bucket,
                                      key_template=template, file_format=file_format or "qcow2", quick=quick,
                                      client=lookups))  # fmt: skip
    order = {row.bucket_url: position for position, row in enumerate(rows)}
    plan = pd.concat(plans, ignore_index=True)
    return plan.iloc[plan["bucket_url"].map(order).argsort(kind="stable")].reset_index(drop=True)


def _template_of(key: str, values: dict[str, str]) -> str:
    """A key template that gives ``key`` for the image whose template fields have ``values``: every occurrence
    of a value (the longest first) becomes its field. ``key`` itself has no braces (``read_plan`` checks)."""
    parts: list[str | tuple[str]] = [key]
    for name in sorted(values, key=lambda field: -len(values[field])):
        value = values[name]
        if not value:
            continue
        split: list[str | tuple[str]] = []
        for part in parts:
            if isinstance(part, tuple):
                split.append(part)
                continue
            for index, piece in enumerate(part.split(value)):
                if index:
                    split.append((name,))
                split.append(piece)
        parts = split
    return "".join("{" + part[0] + "}" if isinstance(part, tuple) else part for part in parts)


# --- deciding, launching ----------------------------------------------------------------------------


def _ledger_rows(path: Path, client: Any) -> list[dict[str, Any]]:
    from ims_nb.exports.ledger import ledger_for

    with ledger_for(client, path) as ledger:  # the rows of the client's account
        return ledger.rows()


def _blocking(rows: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """The latest ledger row of each target that blocks a new launch (as ``Ledger.claim`` decides)."""

    found: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        transient = row["state"] == REFUSED and (row["error_code"] or "") in TRANSIENT_REFUSALS
        if row["state"] in BLOCKING and not transient:
            found[row["image_id"], row["bucket_url"]] = row
    return found


def _decide(
    plan: pd.DataFrame, rows: list[dict[str, Any]], force: bool
) -> tuple[list[str], list[str], list[dict[str, Any] | None]]:
    """What to do with each plan row, and why: launch, skip (live or done in the ledger) or refused; with the
    ledger row that decided it, if any."""
    blocking = {} if force else _blocking(rows)
    latest = {(row["image_id"], row["bucket_url"]): row for row in rows}
    exporting = {row["image_id"]: row for row in rows if row["state"] in LIVE}  # one export per image at a time
    actions, reasons, priors = [], [], []
    for image_id, bucket_url, exportable, rules in zip(
        plan["image_id"], plan["bucket_url"], plan["exportable"], plan["blocking"], strict=True
    ):
        prior = blocking.get((image_id, bucket_url))
        before = latest.get((image_id, bucket_url))
        other = exporting.get(image_id)
        if prior is not None:
            action, reason = _prior_verdict(prior)
        elif not bool(exportable):
            action, reason = REFUSED, "preflight: " + ", ".join(rules)
        elif other is not None and other["bucket_url"] != bucket_url:  # the service would answer IMG.0148
            action, reason = REFUSED, (f"already being exported to {other['bucket_url']} (ledger row "
                                       f"{other['row_id']} is {other['state']}): wait until it ends")  # fmt: skip
        else:
            action = LAUNCH
            reason = "" if before is None else f"again: ledger row {before['row_id']} is {before['state']}"
        actions.append(action)
        reasons.append(reason)
        priors.append(prior)
    return actions, reasons, priors


def _prior_verdict(row: dict[str, Any]) -> tuple[str, str]:
    where = f"ledger row {row['row_id']} is {row['state']}" + (f" (job {row['job_id']})" if row["job_id"] else "")
    if row["state"] == REFUSED:
        return REFUSED, (f"refused by the service before ({where}): {row['error_code']}: {row['fail_reason']}; "
                         "--force sends it again")  # fmt: skip
    if row["state"] in LIVE:
        return SKIP, f"already being exported: {where}"
    return SKIP, f"already exported: {where}; --force exports again"


def _dry_run(plan: pd.DataFrame, rows: list[dict[str, Any]], force: bool) -> pd.DataFrame:
    actions, reasons, _ = _decide(plan, rows, force)
    return plan.assign(action=actions, reason=reasons)


def _launch(plan: pd.DataFrame, client: Any, ledger: Ledger, args: argparse.Namespace) -> pd.DataFrame:
    """Launch the rows to launch; the report has one row per plan row, with what came of it."""
    import pandas as pd

    from ims_nb.exports.plan import launch

    rows = ledger.rows()
    actions, reasons, priors = _decide(plan, rows, args.force)
    first_new = max((row["row_id"] for row in rows), default=0) + 1
    chosen = plan[pd.Series([action == LAUNCH for action in actions], index=plan.index, dtype=bool)]
    launched = launch(chosen, client=client, ledger=ledger, concurrency=args.concurrency, max_rate=args.max_rate,
                      force=args.force)  # fmt: skip
    new = {(row["image_id"], row["bucket_url"]): row for row in launched.to_dict("records")
           if row["row_id"] >= first_new}  # fmt: skip
    now_blocking = _blocking(ledger.rows()) if len(new) < len(chosen) else {}
    report: list[dict[str, Any]] = []
    for plan_row, action, reason, row in zip(plan.to_dict("records"), actions, reasons, priors, strict=True):
        target = (plan_row["image_id"], plan_row["bucket_url"])
        if action == LAUNCH:
            row = new.get(target)
            if row is None:  # another process claimed it between our look at the ledger and launch's
                row = now_blocking.get(target)
                action, reason = SKIPPED, "launched meanwhile by another process" + (
                    f": ledger row {row['row_id']} is {row['state']}" if row is not None else "")  # fmt: skip
            else:
                action, reason = _outcome(row, reason)
        elif action == SKIP:
            action = SKIPPED
        report.append({
            **{name: plan_row.get(name) for name in REPORT_COLUMNS if name in plan_row}, "action": action,
            "reason": reason, "state": row["state"] if row else None, "row_id": row["row_id"] if row else None,
            "job_id": row["job_id"] if row else None,
        })  # fmt: skip
    frame = pd.DataFrame(report, columns=list(REPORT_COLUMNS))
    frame["row_id"] = frame["row_id"].astype("Int64")
    return frame


def _outcome(row: dict[str, Any], reason: str) -> tuple[str, str]:
    """The report's action for a row ``launch`` claimed: launched, or why not."""

    state, code, why = row["state"], row["error_code"], row["fail_reason"] or row["note"] or ""
    if state == REFUSED:
        if (code or "") in TRANSIENT_REFUSALS:
            return NOT_STARTED, f"{code}: {why}; run again to retry"
        return REFUSED, f"refused by the service: {code}: {why}"
    if state == UNKNOWN:
        return UNKNOWN, f"{why or 'the answer was lost'}; the next export or ims-nb jobs --watch settles it"
    return LAUNCHED, reason


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
