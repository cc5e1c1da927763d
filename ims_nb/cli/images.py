"""``ims-nb images``: the image listing with its documented filters, as a table, CSV, JSON or Parquet."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, TextIO

from ims_nb.cli._connect import CountingTransport, connect_estate_from_args, connect_from_args, estate_images
from ims_nb.cli._console import EXIT_OK, Console, run_client_verb
from ims_nb.cli._filters import add_filter_options, filters_from_args
from ims_nb.cli._options import HelpFormatter, add_connection_options, add_estate_options, estate_chosen
from ims_nb.cli._output import OutputFormat, TableColumn, check_output, write_frame
from ims_nb.cli._progress import add_progress_options, progress_line
from ims_nb.cli._verbs import VERBS

DESCRIPTION = "List images (GET /v2/cloudimages, every page) with the documented filters."
EPILOG = """\
examples:
  ims-nb images --imagetype private --status active
  ims-nb images --created-at gte:2025-01-01 --format csv -o images.csv
  ims-nb sim --images 1500 > sim.json &  sleep 2     # a simulator in the background
  ims-nb images --sim - --format json --max-items 10 < sim.json
  ims-nb images --regions all --format csv -o estate.csv    # every region and project of the account
  ims-nb images --regions cn-north-4,ap-southeast-1 --projects cn-north-4_dev,ap-southeast-1

Filters with no option of their own go through --filter NAME=VALUE, by the SDK's name or the wire
name (--filter os_bit=64, --filter __support_kvm=true, --filter member_status=accepted).

Exit codes: 0 done, 1 the service or the network failed, 2 bad arguments or configuration."""


def _size(value: Any) -> str:
    return f"{value:,.1f}"


def _minute(value: Any) -> str:
    return str(value.strftime("%Y-%m-%d %H:%M"))


#: The table's columns; the narrowest terminal still shows id and name.
IMAGE_TABLE = (
    TableColumn("id", "ID"),
    TableColumn("name", "NAME", min_width=16),
    TableColumn("status", "STATUS", drop_order=5),
    TableColumn("image_type", "TYPE", drop_order=2),
    TableColumn("os_version", "OS", drop_order=6, min_width=12),
    TableColumn("size_gb", "SIZE_GB", drop_order=4, right=True, show=_size),
    TableColumn("disk_format", "FORMAT", drop_order=1),
    TableColumn("created_at", "CREATED (UTC)", drop_order=3, show=_minute),
)

#: The estate's table: where each image is, then the one-region columns.
ESTATE_TABLE = (
    TableColumn("region", "REGION", drop_order=7),
    TableColumn("project_name", "PROJECT", drop_order=8),
    *IMAGE_TABLE,
)


def add_images_parser(verbs: Any) -> None:
    """Register ``images`` on ``verbs``, the ``ims-nb`` parser's sub-parsers (an argparse private type)."""
    parser: argparse.ArgumentParser = verbs.add_parser(
        "images", help=VERBS["images"].help, description=DESCRIPTION,
        epilog=EPILOG, formatter_class=HelpFormatter,
    )  # fmt: skip
    add_filter_options(parser, "filters (documented listing filters; all optional)")
    output = parser.add_argument_group("output")
    output.add_argument("--format", choices=[f.value for f in OutputFormat], default=OutputFormat.TABLE.value,
                        help="table (the main columns, fitted to the terminal; default), csv (every column, tags "
                             "joined with ;), json (records, ISO times) or parquet (needs -o and pyarrow)")  # fmt: skip
    output.add_argument("-o", "--output", type=Path, metavar="FILE", help="write to FILE instead of stdout")
    add_progress_options(parser)
    add_connection_options(parser)
    add_estate_options(parser)
    parser.set_defaults(run=run_images)


def run_images(args: argparse.Namespace, stderr: TextIO | None = None) -> int:
    """The ``images`` verb, with its errors turned into one-line messages and exit codes."""
    return run_client_verb(args, _list_images, stderr)


def _list_images(args: argparse.Namespace, console: Console) -> int:
    filters = filters_from_args(args)
    file_format = OutputFormat(args.format)
    check_output(file_format, args.output)
    if estate_chosen(args):
        with connect_estate_from_args(args, console) as estate:
            frame = estate_images(estate, console, max_items=args.max_items, **filters)
        write_frame(frame, file_format, args.output, sys.stdout, ESTATE_TABLE)
        return EXIT_OK
    from ims_nb.frames import images_frame

    progress = progress_line(args, console.stream, "ims-nb images", "images")
    options: dict[str, Any] = {"transport": CountingTransport(progress)} if progress.enabled else {}
    records: list[dict[str, Any]] = []
    with connect_from_args(args, console, **options) as client, progress:
        for record in client.iter_images(max_items=args.max_items, **filters):
            records.append(record)
            progress.add()
    write_frame(images_frame(records), file_format, args.output, sys.stdout, IMAGE_TABLE)
    return EXIT_OK
