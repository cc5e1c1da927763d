"""The options verbs share: argument types, the simulator's, the connection's, the listing filters, watching's."""

from __future__ import annotations

import argparse
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ims_nb.client import config, wire
from ims_nb.errors import ConfigError
from ims_nb.vocab import STALL_AFTER, Target

MAX_PORT = 65535
TIME_OPS = ("gt", "gte", "lt", "lte", "eq", "neq")
WIRE_TIME = "%Y-%m-%dT%H:%M:%SZ"


class HelpFormatter(argparse.HelpFormatter):
    """Wraps prose to the terminal but keeps indented lines (examples) and ``heading:`` lines as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        lines: list[str] = []
        prose: list[str] = []
        for line in [*text.splitlines(), ""]:
            if line.strip() and not line.startswith(" ") and not line.endswith(":"):
                prose.append(line.strip())
                continue
            if prose:
                lines.append(textwrap.fill(" ".join(prose), width, initial_indent=indent, subsequent_indent=indent))
                prose.clear()
            lines.append(indent + line if line.strip() else "")
        return "\n".join(lines).rstrip("\n")


# --- argument types -------------------------------------------------------------------------------


def non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {text}")
    return value


def port(text: str) -> int:
    """A TCP port, or 0 for any free one."""
    value = non_negative(text)
    if value > MAX_PORT:
        raise argparse.ArgumentTypeError(f"not a port (0-{MAX_PORT}): {text}")
    return value


def fixed_port(text: str) -> int:
    """A TCP port a user connects to (0, any free port, would leave them guessing)."""
    value = port(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"not a port (1-{MAX_PORT}): {text}")
    return value


def positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text}")
    return value


def time_scale(text: str) -> float:
    """Simulated seconds per real second: above 0 and at most the control plane's bound (the clock stays
    representable)."""
    from ims_nb.sim.control import MAX_CLOCK_SCALE  # the simulator (and uvicorn) only for the verbs that start one

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value <= MAX_CLOCK_SCALE:  # NaN and infinity fail too
        raise argparse.ArgumentTypeError(f"must be above 0 and at most {MAX_CLOCK_SCALE:g}: {text}")
    return value


def _name_value(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, not {text!r}")
    return name, value


def _tag(text: str) -> str:
    _name_value(text)
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


# --- the simulator ---------------------------------------------------------------------------------


def region_list(text: str) -> list[str]:
    """``--regions``: a comma-separated list of region ids, none empty or repeated."""
    from ims_nb.sim.estate import parse_regions

    try:
        return parse_regions(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_simulator_options(parser: argparse.ArgumentParser) -> None:
    """The options of the simulator ``sim`` serves and ``lab`` and ``app`` start."""
    from ims_nb.sim.control import MAX_CLOCK_SCALE  # the client verbs never import the simulator's server

    parser.add_argument("--host", default="127.0.0.1", help="address to bind (loopback only by default)")
    parser.add_argument("--port", type=port, default=0, help="port (0: any free port)")
    parser.add_argument("--seed", type=non_negative, default=0, help="world seed")
    parser.add_argument("--images", type=non_negative, default=200, help="inventory size")
    parser.add_argument("--region", default=config.DEFAULT_REGION, help="region the simulator plays")
    parser.add_argument(
        "--regions",
        type=region_list,
        default=None,
        metavar="R1,R2,...",
        help="serve these regions, each on a port of its own (default: the one --region)",
    )
    parser.add_argument(
        "--regions-file",
        type=Path,
        default=None,
        metavar="PATH",
        help="write the official SDK's regions.yaml (for $HUAWEICLOUD_SDK_REGIONS_FILE) mapping each region",
    )
    clock = parser.add_mutually_exclusive_group()
    clock.add_argument(
        "--time-scale",
        type=time_scale,
        default=60.0,
        help=f"simulated seconds per real second (default 60, at most {MAX_CLOCK_SCALE:g})",
    )
    clock.add_argument("--manual-clock", action="store_true", help="clock moves only through /_sim/clock")
    parser.add_argument("--state", type=Path, default=None, help="SQLite file that keeps the world across restarts")
    parser.add_argument("--allow-remote", action="store_true", help="allow binding a non-loopback address")


# --- the connection --------------------------------------------------------------------------------

CONNECTION_HELP = (
    "The secret key (SK) is never a command-line option. With --ak, it comes from $HUAWEICLOUD_SDK_SK or the "
    "[basic] section of the SDK credentials file ($HUAWEICLOUD_SDK_CREDENTIALS_FILE, default "
    "~/.huaweicloud/credentials). Without --ak the chain is: $HUAWEICLOUD_SDK_AK/_SK, the credentials file, "
    "$IMS_NB_SIM, else an embedded simulator (announced by a SIMULATOR: line on stderr). --sim uses a running "
    "ims-nb sim and its credentials instead of all of these. TLS certificates are always verified: --ca-bundle "
    "trusts a private CA; only --insecure turns verification off (and allows plain HTTP to a host that is not "
    "loopback), with a warning line."
)


def add_connection_options(parser: argparse.ArgumentParser) -> None:
    """``--region``, ``--endpoint``, ``--ak``, ``--project-id`` and ``--sim``, in a "connection" group."""
    group = parser.add_argument_group("connection", CONNECTION_HELP)
    group.add_argument("--region", help=f"region id (default: ${config.ENV_REGION}, else {config.DEFAULT_REGION})")
    group.add_argument("--endpoint", metavar="URL", help="one URL for IMS, IAM and OBS (a private deployment)")
    group.add_argument("--ak", metavar="AK", help="access key id; its SK comes from the environment or the file")
    group.add_argument("--project-id", metavar="ID", help="project id (default: discovered for the region)")
    group.add_argument(
        "--sim",
        metavar="LINE",
        help="the JSON line a running ims-nb sim printed, or - to read that line from stdin",
    )
    group.add_argument("--ca-bundle", metavar="PEM", help="verify TLS certificates against this CA bundle")
    group.add_argument(
        "--insecure",
        action="store_true",
        help="do not verify TLS certificates, and allow plain HTTP to any host (prints a warning)",
    )


def add_estate_options(parser: argparse.ArgumentParser) -> None:
    """``--regions`` and ``--projects``: the estate (every region and project of the account) instead of one."""
    group = parser.add_argument_group("estate", "several regions and projects at once (one credential set)")
    group.add_argument("--regions", metavar="all|R1,R2",
                       help="list every project of these regions (all: every region the account has a project in); "
                            "rows gain region, project_id and project_name")  # fmt: skip
    group.add_argument("--projects", metavar="P1,P2", help="only these projects (names or ids; needs --regions)")


def estate_chosen(args: argparse.Namespace) -> bool:
    """Whether the options choose an estate (``--regions``): the one check of the estate options against the
    one-region ones.

    Raises:
        ConfigError: ``--regions`` with ``--region``, ``--endpoint`` or ``--project-id``; ``--projects`` without
            ``--regions``.
    """
    if not getattr(args, "regions", None):
        if getattr(args, "projects", None):
            raise ConfigError("--projects chooses projects of an estate: give --regions too (e.g. --regions all)")
        return False
    if args.region or args.endpoint or args.project_id:
        raise ConfigError("--regions covers many regions and projects: leave out --region, --endpoint and "
                          "--project-id (choose projects with --projects)")  # fmt: skip
    return True


def bucket_url(text: str) -> Target:
    """``--bucket-url BUCKET:KEY_TEMPLATE``, parsed at the edge (either part may hold ``{region}``/``{project}``)."""
    try:
        return Target.parse(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


# --- the listing filters --------------------------------------------------------------------------


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
    filters.add_argument("--max-items", type=non_negative, metavar="N", help="stop after N images")


def filters_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The filters for ``iter_images``, checked by the library before any request.

    Raises:
        ConfigError: what ``ims_nb.client.wire.wire_filters`` refuses (an unknown filter, one given twice under
            two names, a paging parameter).
    """
    filters: dict[str, Any] = {}
    for option in FILTER_OPTIONS:
        if getattr(args, option.dest) is not None:
            filters[option.name] = getattr(args, option.dest)
    if args.whole_image is not None:
        filters["whole_image"] = args.whole_image
    for name, value in args.extra_filters:
        if name in filters:
            raise ConfigError(f"--filter {name}: this filter is already given")
        filters[name] = value
    wire.wire_filters(filters)
    return filters


# --- watching --------------------------------------------------------------------------------------


def add_watch_options(group: argparse._ArgumentGroup, watch_help: str) -> None:
    group.add_argument("--watch", action="store_true", help=watch_help)
    group.add_argument("--timeout", type=positive_seconds, metavar="SECONDS",
                       help="with --watch: stop after SECONDS (exit 1); the jobs go on")  # fmt: skip
    group.add_argument(
        "--stall-after", type=positive_seconds, default=STALL_AFTER, metavar="SECONDS",
        help=f"with --watch: flag a job STALLED when its progress has not moved for SECONDS (default {STALL_AFTER:g})",
    )  # fmt: skip
