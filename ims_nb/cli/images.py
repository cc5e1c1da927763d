"""``ims-nb images``: the image listing with its documented filters, as a table, CSV, JSON or Parquet."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import httpx

from ims_nb.cli._connect import (
    EXIT_OK,
    Console,
    HelpFormatter,
    add_connection_options,
    connect_from_args,
    run_client_verb,
)
from ims_nb.cli._output import OutputFormat, TableColumn, check_output, write_frame
from ims_nb.cli._progress import add_progress_options, progress_line
from ims_nb.client import wire
from ims_nb.errors import ConfigError

LISTING_PATH = "/v2/cloudimages"
TIME_OPS = ("gt", "gte", "lt", "lte", "eq", "neq")
WIRE_TIME = "%Y-%m-%dT%H:%M:%SZ"
PAGING_PARAMETERS = ("limit", "marker")

DESCRIPTION = "List images (GET /v2/cloudimages, every page) with the documented filters."
EPILOG = """\
examples:
  ims-nb images --imagetype private --status active
  ims-nb images --created-at gte:2025-01-01 --format csv -o images.csv
  ims-nb sim --images 1500 > sim.json &  sleep 2     # a simulator in the background
  ims-nb images --sim - --format json --max-items 10 < sim.json

Filters with no option of their own go through --filter NAME=VALUE, by the SDK's name or the wire
name (--filter os_bit=64, --filter __support_kvm=true, --filter member_status=accepted).

Exit codes: 0 done, 1 the service or the network failed, 2 bad arguments or configuration."""


def _tag(text: str) -> str:
    key, sep, _ = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, not {text!r}")
    return text


def _moment(text: str) -> str:
    """``OP:TIME`` for ``created_at``/``updated_at``, the time normalised to UTC as the service spells it."""
    op, _, when = text.partition(":")
    try:
        if op not in TIME_OPS:
            raise ValueError(op)
        moment = datetime.fromisoformat(when)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected OP:TIME with OP one of {', '.join(TIME_OPS)} and an ISO 8601 TIME "
            f"(2025-01-31 or 2025-01-31T08:00:00Z; UTC unless it has an offset), not {text!r}"
        ) from None
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return f"{op}:{moment.strftime(WIRE_TIME)}"


def _name_value(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, not {text!r}")
    return name, value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {text}")
    return value


@dataclass(frozen=True)
class FilterOption:
    """A listing filter with an option of its own; ``name`` is how ``iter_images`` takes it."""

    flag: str
    name: str
    help: str
    metavar: str | None = None
    choices: tuple[str, ...] | None = None
    type: Callable[[str], str] = str

    @property
    def dest(self) -> str:
        return self.flag.removeprefix("--").replace("-", "_")


#: The documented listing filters that have options of their own, in the order ``--help`` shows them.
FILTER_OPTIONS = (
    FilterOption("--imagetype", "imagetype", "gold (public), private, shared or market",
                 choices=("gold", "private", "shared", "market")),
    FilterOption("--status", "status", "image status", choices=("queued", "saving", "deleted", "killed", "active")),
    FilterOption("--platform", "platform", "OS platform, e.g. Ubuntu, CentOS, Windows", "PLATFORM"),
    FilterOption("--os-type", "os_type", "OS type", choices=("Linux", "Windows", "Other")),
    FilterOption("--visibility", "visibility", "who sees the image", choices=("public", "private", "shared")),
    FilterOption("--name", "name", "exact image name", "NAME"),
    FilterOption("--owner", "owner", "project id of the owner", "PROJECT_ID"),
    FilterOption("--tag", "tag", "a tag, as KEY=VALUE", "KEY=VALUE", type=_tag),
    FilterOption("--enterprise-project-id", "enterprise_project_id", "enterprise project (0: default; "
                 "all_granted_eps: all you may see)", "ID"),
    FilterOption("--virtual-env-type", "virtual_env_type", "FusionCompute, Ironic, DataImage or IsoImage", "TYPE"),
    FilterOption("--architecture", "architecture", "CPU architecture", choices=("x86", "arm")),
    FilterOption("--disk-format", "disk_format", "e.g. zvhd2, vhd, qcow2, raw, iso", "FORMAT"),
    FilterOption("--created-at", "created_at", f"creation time, OP one of {', '.join(TIME_OPS)}", "OP:TIME",
                 type=_moment),
    FilterOption("--updated-at", "updated_at", "last update time, like --created-at", "OP:TIME", type=_moment),
    FilterOption("--sort-key", "sort_key", "sort by this field (default created_at)",
                 choices=("created_at", "name", "container_format", "disk_format", "status", "id", "size")),
    FilterOption("--sort-dir", "sort_dir", "sort direction (default desc)", choices=("asc", "desc")),
)  # fmt: skip


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


def add_images_parser(verbs: Any) -> None:
    """Register ``images`` on ``verbs``, the ``ims-nb`` parser's sub-parsers (an argparse private type)."""
    parser: argparse.ArgumentParser = verbs.add_parser(
        "images", help="list images with filters, as a table, CSV, JSON or Parquet", description=DESCRIPTION,
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
    parser.set_defaults(run=run_images)


def add_filter_options(parser: argparse.ArgumentParser, title: str) -> None:
    """The listing filters (``FILTER_OPTIONS``, ``--whole-image``, ``--filter``) and ``--max-items``, in a group."""
    filters = parser.add_argument_group(title)
    for option in FILTER_OPTIONS:
        filters.add_argument(
            option.flag, dest=option.dest, help=option.help, metavar=option.metavar, choices=option.choices,
            type=option.type,
        )  # fmt: skip
    filters.add_argument(
        "--whole-image",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="only full-ECS images, or only the others",
    )
    filters.add_argument(
        "--filter", dest="extra_filters", action="append", type=_name_value, default=[], metavar="NAME=VALUE",
        help="any other documented filter (repeatable)",
    )  # fmt: skip
    filters.add_argument("--max-items", type=_count, metavar="N", help="stop after N images")


def filters_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The filters for ``iter_images``, checked against the documented ones.

    Raises:
        ConfigError: an unknown filter, a filter given twice, or a paging parameter.
    """
    filters: dict[str, Any] = {}
    for option in FILTER_OPTIONS:
        if getattr(args, option.dest) is not None:
            filters[option.name] = getattr(args, option.dest)
    if args.whole_image is not None:
        filters["whole_image"] = args.whole_image
    for name, value in args.extra_filters:
        if name in PAGING_PARAMETERS:
            raise ConfigError(f"--filter {name}: paging is managed by ims-nb; use --max-items to cap the listing")
        wire_name = wire.FILTER_ALIASES.get(name, name)
        if any(wire.FILTER_ALIASES.get(given, given) == wire_name for given in filters):
            raise ConfigError(f"--filter {name}: this filter is already given")
        filters[name] = value
    wire.wire_filters(filters)
    return filters


def run_images(args: argparse.Namespace, stderr: TextIO | None = None) -> int:
    """The ``images`` verb, with its errors turned into one-line messages and exit codes."""
    return run_client_verb(args, _list_images, stderr)


def _list_images(args: argparse.Namespace, console: Console) -> int:
    filters = filters_from_args(args)
    file_format = OutputFormat(args.format)
    check_output(file_format, args.output)
    try:
        from ims_nb.frames import images_frame
    except ImportError as exc:
        raise ConfigError(f"ims-nb images needs {exc.name}: pip install 'ims-nb[lab]'") from None
    progress = progress_line(args, console.stream, "ims-nb images", "images")
    options: dict[str, Any] = {"transport": _PageCounter(progress.page)} if progress.enabled else {}
    records: list[dict[str, Any]] = []
    with connect_from_args(args, console, **options) as client, progress:
        for record in client.iter_images(max_items=args.max_items, **filters):
            records.append(record)
            progress.add()
    write_frame(images_frame(records), file_format, args.output, sys.stdout, IMAGE_TABLE)
    return EXIT_OK


class _PageCounter(httpx.HTTPTransport):
    """The default transport, counting the listing pages that arrive."""

    def __init__(self, on_page: Callable[[], None]) -> None:
        super().__init__()
        self._on_page = on_page

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if request.method == "GET" and request.url.path.endswith(LISTING_PATH) and response.is_success:
            self._on_page()
        return response
