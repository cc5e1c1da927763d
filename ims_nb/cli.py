"""The ``ims-nb`` command line: ``sim`` serves the simulator, ``lab`` runs JupyterLab against it, ``app`` the export
dashboard, ``images`` lists, ``preflight`` says which exports would be refused."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from ims_nb.cli_app import add_app_options, run_app
from ims_nb.cli_export import add_export_parser
from ims_nb.cli_images import add_images_parser
from ims_nb.cli_jobs import add_jobs_parser
from ims_nb.cli_lab import run_lab
from ims_nb.cli_preflight import add_preflight_parser
from ims_nb.sim.server import bind, build_simulation, check_host, endpoint_of, info_of, uvicorn_server

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line, with a pointer to ``--help`` (exit code 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {text}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text}")
    return value


def _add_sim_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (loopback only by default)")
    parser.add_argument("--port", type=_non_negative, default=0, help="port (0: any free port)")
    parser.add_argument("--seed", type=_non_negative, default=0, help="world seed")
    parser.add_argument("--images", type=_non_negative, default=200, help="inventory size")
    parser.add_argument("--region", default="cn-north-4", help="region the simulator plays")
    clock = parser.add_mutually_exclusive_group()
    clock.add_argument(
        "--time-scale", type=_positive_float, default=60.0, help="simulated seconds per real second (default 60)"
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
    lab.add_argument("--lab-port", type=_non_negative, default=8888, help="JupyterLab port")
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
    simulation = build_simulation(
        seed=args.seed,
        images=args.images,
        region=args.region,
        time_scale=args.time_scale,
        manual_clock=args.manual_clock,
        state=args.state,
    )
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
