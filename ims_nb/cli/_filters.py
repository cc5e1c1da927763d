"""The listing filters verbs share: an option per documented filter, ``--whole-image``, ``--filter NAME=VALUE``."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ims_nb.cli._options import non_negative
from ims_nb.client import wire
from ims_nb.errors import ConfigError

TIME_OPS = ("gt", "gte", "lt", "lte", "eq", "neq")
WIRE_TIME = "%Y-%m-%dT%H:%M:%SZ"


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
