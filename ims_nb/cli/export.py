"""``ims-nb export``: plan exports (targets, formats, preflight verdicts), launch each once through the ledger,
and follow them with ``--watch``."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from ims_nb.cli._connect import (
    connect_any,
    home_client,
    ledger_missing,
    open_ledger,
    plan_images,
    scoped_table,
    selected_images,
    with_scope,
)
from ims_nb.cli._console import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_REFUSED, Console, run_client_verb
from ims_nb.cli._filters import add_filter_options, filters_from_args
from ims_nb.cli._follow import follow, state_counts
from ims_nb.cli._launch_report import (
    LAUNCHED,
    PLAN_TABLE,
    REFUSED,
    REPORT_TABLE,
    dry_run_totals,
    exit_code,
    launch_totals,
    write_report,
)
from ims_nb.cli._ledgers import add_ledger_option, ledger_location
from ims_nb.cli._options import (
    HelpFormatter,
    add_connection_options,
    add_estate_options,
    add_watch_options,
    bucket_url,
    positive_seconds,
)
from ims_nb.cli._output import (
    OutputFormat,
    add_output_options,
    check_output,
    output_format_of,
)
from ims_nb.cli._progress import add_progress_options
from ims_nb.cli._verbs import VERBS
from ims_nb.errors import ConfigError
from ims_nb.exports.plan_file import PlanRow, read_plan
from ims_nb.vocab import DEFAULT_KEY_TEMPLATE, FILE_FORMATS

if TYPE_CHECKING:
    import pandas as pd

    from ims_nb.client import ImsClient
    from ims_nb.client.protocol import ClientLike
    from ims_nb.estate import Estate


DEFAULT_CONCURRENCY = 4
DEFAULT_MAX_RATE = 5.0

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
  ims-nb export --regions cn-north-4,ap-southeast-1 --imagetype private --status active --format qcow2 \\
      --bucket-url 'ims-exports-{region}:{project}/{name}-{id8}.{ext}' --watch

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
        "--bucket-url", type=bucket_url, metavar="BUCKET:KEY_TEMPLATE",
        help="--bucket and --key-template in one, as preflight takes them (e.g. 'ims-exports-{region}:{name}.{ext}')",
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
    add_estate_options(parser)
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
    if args.bucket_url is not None:
        if args.bucket is not None or args.key_template is not None:
            raise ConfigError("--bucket-url is --bucket and --key-template in one: give it, or those two")
        args.bucket, args.key_template = args.bucket_url.bucket, args.bucket_url.key
    if args.watch and args.dry_run:
        raise ConfigError("--dry-run launches nothing to --watch")
    if args.plan is not None:
        given = [name for name, present in (
            ("IMAGE_IDs", bool(args.image_ids)), ("filters", has_filters), ("--bucket", args.bucket is not None),
            ("--bucket-url", args.bucket_url is not None),
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
        raise ConfigError("--bucket is required (or --bucket-url BUCKET:KEY_TEMPLATE; without --plan)")
    if not (args.file_format or args.quick or args.auto):
        raise ConfigError("choose the mode: --format F (normal export), --quick (fast export) or --auto (fast "
                          "export where needed)")  # fmt: skip
    if args.quick and args.file_format:
        raise ConfigError("--quick writes ZVHD2 and takes no --format (--auto --format F: fast export where needed, "
                          "F otherwise)")  # fmt: skip


# --- the verb -------------------------------------------------------------------------------------


def _export(args: argparse.Namespace, console: Console) -> int:
    try:
        from ims_nb.exports.launch import launch_report  # noqa: F401 - the extras are checked before connecting
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
    ledger_location(args)  # a bad --ledger is refused before connecting
    with connect_any(args, console) as client:
        estate = client if isinstance(client, Mapping) else None
        location = ledger_location(args, home_client(client))  # a simulator's exports: its own, never the real one
        plan = _plan(client, console, args, filters, plan_rows)
        if args.dry_run:
            report = with_scope(_dry_run(plan, client, location, args.force), plan, estate)
            write_report(report, scoped_table(PLAN_TABLE, estate), output_format, args.output, all_messages=True)
            console.notice(dry_run_totals(report))
            return EXIT_REFUSED if (report["action"] == REFUSED).any() else EXIT_OK
        return _launch(args, console, client, plan, location, output_format)


def _launch(
    args: argparse.Namespace, console: Console, client: ImsClient | Estate, plan: pd.DataFrame,
    location: str | Path, output_format: OutputFormat,
) -> int:  # fmt: skip
    """Launch the plan through the ledger, write the report, and with ``--watch`` follow the jobs to their end."""
    from ims_nb.exports.launch import launch_report

    estate = client if isinstance(client, Mapping) else None
    with open_ledger(client, location) as ledger:
        try:
            report = launch_report(plan, client=client, ledger=ledger, force=args.force,
                                   concurrency=args.concurrency, max_rate=args.max_rate)  # fmt: skip
        except KeyboardInterrupt:
            console.error("interrupted while launching: the exports already sent go on in the cloud; the ledger "
                          "settles any in doubt on the next run")  # fmt: skip
            return EXIT_INTERRUPTED
        write_report(with_scope(report, plan, estate), scoped_table(REPORT_TABLE, estate), output_format, args.output,
               all_messages=False)  # fmt: skip
        console.notice(launch_totals(report))
        code = exit_code(report)
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
    client: ClientLike | Estate, console: Console, args: argparse.Namespace, filters: dict[str, Any],
    plan_rows: list[PlanRow] | None,
) -> pd.DataFrame:  # fmt: skip
    """The plan of the selection (bucket, key template, mode), or of a plan file's rows taken as they are."""
    from ims_nb.exports.plan import plan_exports

    if plan_rows is not None:
        images = plan_images(client, console, plan_rows)
        return plan_exports(images, targets={row.image_id: row.target for row in plan_rows},
                            file_format=[row.file_format for row in plan_rows],
                            quick=[row.quick for row in plan_rows], client=client)  # fmt: skip
    images = selected_images(client, console, list(dict.fromkeys(args.image_ids)), args.max_items, filters)
    quick: bool | str = True if args.quick else "auto" if args.auto else False
    return plan_exports(images, bucket=args.bucket, key_template=args.key_template, quick=quick,
                        file_format=args.file_format or "qcow2", client=client)  # fmt: skip


def _dry_run(plan: pd.DataFrame, client: ClientLike | Estate, location: str | Path, force: bool) -> pd.DataFrame:
    """The plan with what a launch would do with each row (no ledger file yet: nothing is in it)."""
    from ims_nb.exports.decisions import decide_rows

    if ledger_missing(location):
        decisions = decide_rows(plan, [], force=force)
    else:
        with open_ledger(client, location) as ledger:  # the rows of the client's account
            decisions = ledger.decide(plan, force=force)
    return plan.assign(action=decisions["action"], reason=decisions["reason"])
