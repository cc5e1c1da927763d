"""The options verbs share: argument types, the simulator's, the connection's, targets, watching's."""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path

from ims_nb.client import config
from ims_nb.errors import ConfigError
from ims_nb.vocab import STALL_AFTER, Target

MAX_PORT = 65535


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


# --- watching --------------------------------------------------------------------------------------


def add_watch_options(group: argparse._ArgumentGroup, watch_help: str) -> None:
    group.add_argument("--watch", action="store_true", help=watch_help)
    group.add_argument("--timeout", type=positive_seconds, metavar="SECONDS",
                       help="with --watch: stop after SECONDS (exit 1); the jobs go on")  # fmt: skip
    group.add_argument(
        "--stall-after", type=positive_seconds, default=STALL_AFTER, metavar="SECONDS",
        help=f"with --watch: flag a job STALLED when its progress has not moved for SECONDS (default {STALL_AFTER:g})",
    )  # fmt: skip
