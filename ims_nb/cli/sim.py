"""``ims-nb sim``: serve the embedded IMS/OBS/IAM simulator and print its one JSON line (endpoint, credentials)."""

from __future__ import annotations

import argparse
import json
import sqlite3
from typing import Any

from ims_nb.cli._options import add_simulator_options, non_negative
from ims_nb.cli._verbs import VERBS

DESCRIPTION = """Serve the embedded IMS, OBS and IAM simulator until SIGINT or SIGTERM. One JSON line goes to stdout \
first: {"endpoint", "region", "project_id", "ak", "sk"}, what --sim of the other verbs takes. With --regions R1,R2,... \
each region has an endpoint (a port) of its own; the line gives the first region's five fields and adds "regions" \
({region: {endpoint, project_id}}) and "projects" ([{id, name, region}], sub-projects included). With --team N the \
account has N more operators (ims-operator-2 ...), each with a password and an AK/SK; the control plane's \
/_sim/credentials lists every user."""


def add_sim_parser(verbs: Any) -> None:
    """Register ``sim`` on ``verbs``, the ``ims-nb`` parser's sub-parsers (an argparse private type)."""
    sim: argparse.ArgumentParser = verbs.add_parser("sim", help=VERBS["sim"].help, description=DESCRIPTION)
    add_simulator_options(sim)
    sim.add_argument("--team", type=non_negative, default=0, help="operators besides the demo users (a team)")
    sim.set_defaults(run=run_sim)


def run_sim(args: argparse.Namespace) -> int:
    """Bind, print the JSON line, serve until a signal (uvicorn handles SIGINT/SIGTERM).

    Raises:
        ValueError: a host that is not loopback without ``--allow-remote``, or a ``--state`` that is no state.
        OSError: the address cannot be bound.
    """
    from ims_nb.sim.estate import write_regions_file
    from ims_nb.sim.server import bind, build_simulations, check_host, endpoint_of, info_for, serve, uvicorn_server

    check_host(args.host, args.allow_remote)
    try:
        simulations = build_simulations(
            args.regions or [args.region],
            seed=args.seed,
            images=args.images,
            time_scale=args.time_scale,
            manual_clock=args.manual_clock,
            state=args.state,
            team=args.team,
        )
    except sqlite3.Error as exc:  # a folder, an unreadable file, or a file that is not a simulator state
        raise ValueError(f"--state {args.state}: {exc}") from None
    socks = [bind(args.host, args.port if n == 0 else 0) for n in range(len(simulations))]
    servers = [uvicorn_server(simulation) for simulation in simulations]
    info = info_for(simulations, [endpoint_of(sock) for sock in socks])
    if args.regions_file is not None:
        write_regions_file(args.regions_file, info.regions or {info.region: {"endpoint": info.endpoint}})
    print(json.dumps(info.line()), flush=True)
    serve(servers, socks)
    return 0
