"""The ``ims-nb`` command line: ``sim`` serves the simulator, ``lab`` runs JupyterLab against it, ``app`` the export
dashboard, ``images`` lists, ``preflight`` says which exports would be refused."""

from __future__ import annotations

import argparse
import json
import os
import re
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from ims_nb.cli.app import add_app_options, run_app
from ims_nb.cli.export import add_export_parser
from ims_nb.cli.images import add_images_parser
from ims_nb.cli.jobs import add_jobs_parser
from ims_nb.cli.lab import run_lab
from ims_nb.cli.preflight import add_preflight_parser
from ims_nb.client.config import ENV_SECURITY_TOKEN, ENV_SK
from ims_nb.errors import mask_secrets
from ims_nb.sim.control import MAX_CLOCK_SCALE
from ims_nb.sim.server import bind, build_simulation, check_host, endpoint_of, info_of, uvicorn_server

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
MAX_PORT = 65535
#: The SK of a simulator's JSON line, which argparse echoes when the line lands where it does not belong
#: ("unrecognized arguments: {...}", "ambiguous option: --s={...}").
_LINE_SK = re.compile(r"""(["']sk["']\s*:\s*)(["'])[^"']*\2""")


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line, with a pointer to ``--help`` (exit code 2)."""

    def error(self, message: str) -> NoReturn:
        # argparse echoes arguments: mask secrets (a --sim line's SK, the environment's SK or token, signatures),
        # and escape what would break the line (newlines, other line separators, control characters); argparse
        # quotes some values (repr) but not all ("unrecognized arguments: ...")
        secrets = tuple(value for value in (os.environ.get(ENV_SK), os.environ.get(ENV_SECURITY_TOKEN)) if value)
        masked = mask_secrets(_LINE_SK.sub(r"\1\2***\2", message), secrets)
        one_line = "".join(char if char.isprintable() else ascii(char)[1:-1] for char in masked)
        self.exit(2, f"{self.prog}: error: {one_line} (see {self.prog} --help)\n")

    def _get_values(self, action: argparse.Action, arg_strings: list[str]) -> Any:
        # Python 3.11 drops a "--" given as an option's value (--port=--) and returns [], past the option's type
        # and choices; take it as the literal value, as later Pythons do
        if action.option_strings and action.nargs is None and arg_strings == ["--"]:
            value = self._get_value(action, "--")
            self._check_value(action, value)
            return value
        return super()._get_values(action, arg_strings)


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {text}")
    return value


def _port(text: str) -> int:
    """A TCP port, or 0 for any free one."""
    value = _non_negative(text)
    if value > MAX_PORT:
        raise argparse.ArgumentTypeError(f"not a port (0-{MAX_PORT}): {text}")
    return value


def _time_scale(text: str) -> float:
    """Simulated seconds per real second: above 0 and at most the control plane's bound (the clock stays
    representable)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value <= MAX_CLOCK_SCALE:  # NaN and infinity fail too
        raise argparse.ArgumentTypeError(f"must be above 0 and at most {MAX_CLOCK_SCALE:g}: {text}")
    return value


def _add_sim_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (loopback only by default)")
    parser.add_argument("--port", type=_port, default=0, help="port (0: any free port)")
    parser.add_argument("--seed", type=_non_negative, default=0, help="world seed")
    parser.add_argument("--images", type=_non_negative, default=200, help="inventory size")
    parser.add_argument("--region", default="cn-north-4", help="region the simulator plays")
    clock = parser.add_mutually_exclusive_group()
    clock.add_argument(
        "--time-scale",
        type=_time_scale,
        default=60.0,
        help=f"simulated seconds per real second (default 60, at most {MAX_CLOCK_SCALE:g})",
    )
    clock.add_argument("--manual-clock", action="store_true", help="clock moves only through /_sim/clock")
    parser.add_argument("--state", type=Path, default=None, help="SQLite file that keeps the world across restarts")
    parser.add_argument("--allow-remote", action="store_true", help="allow binding a non-loopback address")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ims-nb", description=__doc__)
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    sim = verbs.add_parser("sim", help="serve the embedded IMS/OBS/IAM simulator; prints one JSON line")
    _add_sim_options(sim)
    lab = verbs.add_parser("lab", help="start the simulator and JupyterLab on notebooks/, pointed at it")
    _add_sim_options(lab)
    lab.add_argument("--lab-port", type=_port, default=8888, help="JupyterLab port")
    lab.add_argument("--notebooks", type=Path, default=NOTEBOOKS, help="folder JupyterLab opens")
    lab.add_argument("--lab-token", default=None, help="JupyterLab's token (default: a random one, in its log)")
    app = verbs.add_parser("app", help="the export dashboard in Voilà, on a simulator it starts (or your account)")
    _add_sim_options(app)
    add_app_options(app)
    add_images_parser(verbs)
    add_preflight_parser(verbs)
    add_export_parser(verbs)
    add_jobs_parser(verbs)
    return parser


def _start(args: argparse.Namespace) -> tuple[object, object, dict[str, str]]:
    check_host(args.host, args.allow_remote)
    try:
        simulation = build_simulation(
            seed=args.seed,
            images=args.images,
            region=args.region,
            time_scale=args.time_scale,
            manual_clock=args.manual_clock,
            state=args.state,
        )
    except sqlite3.Error as exc:  # a folder, an unreadable file, or a file that is not a simulator state
        raise ValueError(f"--state {args.state}: {exc}") from None
    sock = bind(args.host, args.port)
    info = info_of(simulation, endpoint_of(sock))
    return uvicorn_server(simulation), sock, info.as_json_dict()


def run_sim(args: argparse.Namespace) -> int:
    server, sock, line = _start(args)
    print(json.dumps(line), flush=True)
    server.run(sockets=[sock])  # type: ignore[attr-defined]  # uvicorn handles SIGINT/SIGTERM
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ims-nb`` console script."""
    args = build_parser().parse_args(argv)
    if hasattr(args, "run"):  # a client verb: it reports its own errors
        code: int = args.run(args)
        return code
    try:
        if args.verb == "sim":
            return run_sim(args)
        if args.verb == "app":
            return run_app(args)
        return run_lab(args)
    except (ValueError, OSError) as exc:
        print(f"ims-nb {args.verb}: {exc}", file=sys.stderr)
        return 2
