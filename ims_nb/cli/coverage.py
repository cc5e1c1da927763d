"""``ims-nb coverage``: which images have a current verified export, which not and why; ``--export-gap`` closes it."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from ims_nb.cli._connect import connect_any, estate_images, home_client, open_ledger
from ims_nb.cli._console import EXIT_INTERRUPTED, EXIT_OK, Console, run_client_verb
from ims_nb.cli._filters import add_filter_options, filters_from_args
from ims_nb.cli._follow import follow
from ims_nb.cli._ledgers import add_ledger_option, ledger_location
from ims_nb.cli._options import HelpFormatter, add_connection_options, add_estate_options, add_watch_options
from ims_nb.cli._output import OutputFormat, TableColumn, check_output, write_frame
from ims_nb.cli._progress import add_progress_options
from ims_nb.cli._verbs import VERBS
from ims_nb.errors import ConfigError
from ims_nb.vocab import DEFAULT_KEY_TEMPLATE, Outcome, Scope, Target

if TYPE_CHECKING:
    import pandas as pd

    from ims_nb.client.protocol import ClientLike
    from ims_nb.exports.ledger import Ledger

    #: One client, or an estate's clients.
    Clients = ClientLike | Mapping[Scope, ClientLike]

#: Some exportable image has no current export (never, failed, stale, or still being exported).
EXIT_UNCOVERED = 4

DESCRIPTION = """\
One row per image: covered (a verified export in the ledger whose object still exists), covered (outside \
the ledger) (an object in a listed bucket whose key names the image: exported with the console or another \
tool), stale (the image was updated after its newest export), in-progress, failed, never, or \
not-exportable (with the rules that refuse it). Uncovered images come first, the oldest and biggest first.

The images are the private ones (--imagetype private unless another --imagetype is given) that the filters \
select. --export-gap plans the exports of the never, failed and stale images to --bucket-url and, with \
--yes, launches them through the ledger as ims-nb export does (without --yes nothing is sent)."""
EPILOG = f"""\
examples:
  ims-nb coverage --format csv -o coverage.csv
  ims-nb coverage --bucket my-bucket --bucket my-old-bucket --key-template 'backups/{{id}}.{{ext}}'
  ims-nb coverage --export-gap --bucket-url 'my-bucket:{{name}}-{{id8}}.{{ext}}' --yes --watch
  ims-nb coverage --regions all --bucket 'ims-exports-{{region}}'     # every region and project of the account
  ims-nb coverage --regions all --export-gap --yes --watch \
      --bucket-url 'ims-exports-{{region}}:{{project}}/{{name}}-{{id8}}.{{ext}}'

Objects the ledger does not know are searched in the --bucket buckets, else the ledger's target buckets, \
else the region's Standard buckets (with --regions: each region's, and a --bucket or --bucket-url bucket may \
be a template of {{region}} and {{project}}); a key matches an image by --key-template (default \
{DEFAULT_KEY_TEMPLATE}), or by the image id (or its first 8 characters with {{id8}}) in it.

Exit codes: 0 every exportable image is covered, {EXIT_UNCOVERED} some exportable image is not (never, \
failed, stale or in-progress; after --export-gap --yes [--watch], as it stands then), 1 the service or \
the network failed, 2 bad arguments or configuration, 130 Ctrl-C."""

#: The table; the narrowest terminal still shows id, status and the blocking rules.
COVERAGE_TABLE = (
    TableColumn("id", "ID"),
    TableColumn("name", "NAME", drop_order=4, min_width=12),
    TableColumn("status", "STATUS"),
    TableColumn("blocking", "BLOCKING", drop_order=3, min_width=16),
    TableColumn("last_export_at", "LAST EXPORT (UTC)", drop_order=2, show=lambda v: str(v.strftime("%Y-%m-%d %H:%M"))),
    TableColumn("target", "TARGET", drop_order=1, min_width=20),
    TableColumn("size_bytes", "SIZE_GB", drop_order=5, right=True, show=lambda v: f"{v / 1024**3:,.1f}"),
)

#: The estate's table: where each image is, then the one-region columns.
ESTATE_COVERAGE_TABLE = (
    TableColumn("region", "REGION", drop_order=6),
    TableColumn("project_name", "PROJECT", drop_order=7),
    *COVERAGE_TABLE,
)


def _bucket_url(text: str) -> Target:
    try:
        return Target.parse(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_coverage_parser(verbs: Any) -> None:
    """Register ``coverage`` on ``verbs``, the ``ims-nb`` parser's sub-parsers (an argparse private type)."""
    parser: argparse.ArgumentParser = verbs.add_parser(
        "coverage", help=VERBS["coverage"].help, description=DESCRIPTION, epilog=EPILOG,
        formatter_class=HelpFormatter,
    )  # fmt: skip
    search = parser.add_argument_group("where exports are found")
    search.add_argument("--bucket", dest="buckets", action="append", metavar="NAME",
                        help="a bucket to search for exports the ledger does not know (repeatable)")  # fmt: skip
    search.add_argument("--key-template", metavar="T", help=f"how keys name images (default {DEFAULT_KEY_TEMPLATE})")
    add_ledger_option(search)
    gap = parser.add_argument_group("export the gap")
    gap.add_argument("--export-gap", action="store_true", help="plan the exports of the never, failed and stale images")
    gap.add_argument("--bucket-url", type=_bucket_url, metavar="BUCKET:KEY_TEMPLATE", help="where the gap goes")
    gap.add_argument("--yes", action="store_true", help="launch the gap's exports (without it nothing is sent)")
    add_watch_options(gap, "then follow the launched jobs to their end, like ims-nb jobs --watch")
    add_filter_options(parser, "filters (documented listing filters; --imagetype private unless given)")
    add_estate_options(parser)
    output = parser.add_argument_group("output")
    output.add_argument("--format", choices=[f.value for f in OutputFormat], default=OutputFormat.TABLE.value,
                        help="table (default), csv, json or parquet (needs -o)")  # fmt: skip
    output.add_argument("-o", "--output", type=Path, metavar="FILE", help="write to FILE instead of stdout")
    add_progress_options(parser, "the job bars of --watch")
    add_connection_options(parser)
    parser.set_defaults(run=run_coverage)


def run_coverage(args: argparse.Namespace, stderr: TextIO | None = None) -> int:
    """The ``coverage`` verb, with its errors turned into one-line messages and exit codes."""
    return run_client_verb(args, _coverage, stderr)


def _check(args: argparse.Namespace) -> None:
    if args.export_gap and args.bucket_url is None:
        raise ConfigError("--export-gap needs --bucket-url BUCKET:KEY_TEMPLATE")
    given = [flag for flag, on in (("--bucket-url", args.bucket_url is not None), ("--yes", args.yes),
                                   ("--watch", args.watch)) if on]  # fmt: skip
    if given and not args.export_gap:
        raise ConfigError(f"{', '.join(given)} go with --export-gap")
    if args.watch and not args.yes:
        raise ConfigError("--watch follows launched exports: add --yes")


def _coverage(args: argparse.Namespace, console: Console) -> int:
    from ims_nb.coverage import coverage, uncovered
    from ims_nb.targets import check_key_template

    _check(args)
    filters = {"imagetype": "private", **filters_from_args(args)}
    for template in (args.key_template, args.bucket_url.key if args.bucket_url else None):
        if template is not None:
            check_key_template(template)
    output_format = OutputFormat(args.format)
    check_output(output_format, args.output)
    ledger_location(args)  # a bad --ledger is refused before connecting
    with _connected(args, console, filters) as (client, ledger, images):
        search = args.buckets[0] if args.buckets and len(args.buckets) == 1 else args.buckets  # may be a template

        def judge() -> pd.DataFrame:
            return coverage(images, ledger, client, buckets=search, key_template=args.key_template)

        frame = judge()
        if args.export_gap:
            interrupted = _export_gap(frame, images, client, ledger, args, console)
            if interrupted:
                return EXIT_INTERRUPTED
            frame = judge() if args.yes else frame
    table = ESTATE_COVERAGE_TABLE if "region" in frame.columns else COVERAGE_TABLE
    write_frame(frame, output_format, args.output, sys.stdout, table)
    console.notice(_totals(frame))
    return EXIT_UNCOVERED if len(uncovered(frame)) else EXIT_OK


@contextmanager
def _connected(
    args: argparse.Namespace, console: Console, filters: dict[str, Any]
) -> Iterator[tuple[Clients, Ledger, pd.DataFrame]]:
    """The client (with ``--regions``: the estate's clients), its ledger and the images to judge."""
    from ims_nb.estate import Estate

    with ExitStack() as stack:
        client = connect_any(args, console)
        stack.enter_context(client)
        ledger = stack.enter_context(open_ledger(client, ledger_location(args, home_client(client))))
        if isinstance(client, Estate):
            yield client, ledger, estate_images(client, console, max_items=args.max_items, **filters)
        else:
            yield client, ledger, client.images(max_items=args.max_items, **filters)


def _export_gap(
    frame: pd.DataFrame, images: pd.DataFrame, client: Clients, ledger: Ledger, args: argparse.Namespace,
    console: Console,
) -> bool:  # fmt: skip
    """Plan the gap; with ``--yes`` launch it (and with ``--watch`` follow it). Returns whether Ctrl-C stopped it."""
    from ims_nb.exports.gap import coverage_gap_plan, launch_gap

    plan = coverage_gap_plan(frame, images, bucket_url=args.bucket_url, client=client)
    refused = int((~plan["exportable"].fillna(False).astype(bool)).sum())
    if not args.yes:
        console.notice(f"the gap: {len(plan)} image(s) to export to {args.bucket_url.bucket}, {refused} of them "
                       "refused by preflight; nothing was sent (add --yes to launch)")  # fmt: skip
        return False
    try:
        report = launch_gap(plan, client=client, ledger=ledger)
    except KeyboardInterrupt:
        console.error("interrupted while launching: the exports already sent go on in the cloud")
        return True
    counts = report["action"].value_counts()
    console.notice(f"the gap: {len(plan)} image(s): " + ", ".join(
        f"{int(counts.get(o.value, 0))} {o.value}" for o in Outcome if counts.get(o.value)))  # fmt: skip
    if args.watch:
        return follow(ledger, client, args, console)[1]
    return False


def _totals(frame: pd.DataFrame) -> str:
    from ims_nb.coverage import coverage_summary

    summary = coverage_summary(frame)
    by_status = summary.groupby("status", sort=False)["images"].sum()
    parts = [f"{int(count)} {status}" for status, count in by_status.items() if count]
    return f"{len(frame)} image{'' if len(frame) == 1 else 's'}" + (": " + ", ".join(parts) if parts else "")
