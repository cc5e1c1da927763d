"""``ims-nb sim``: serve the embedded IMS/OBS/IAM simulator and print its one JSON line (endpoint, credentials)."""

from __future__ import annotations

import argparse
import json
import sqlite3
from typing import Any

from ims_nb.cli._options import add_simulator_options
from ims_nb.cli._verbs import VERBS

DESCRIPTION = """Serve the embedded IMS, OBS and IAM simulator until SIGINT or SIGTERM. One JSON line goes to stdout \
first: {"endpoint", "region", "project_id", "ak", "sk"}, what --sim of the other verbs takes."""


def add_sim_parser(verbs: Any) -> None:
    """Register ``sim`` on ``verbs``, the ``ims-nb`` parser's sub-parsers (an argparse private type)."""
    sim: argparse.ArgumentParser = verbs.add_parser("sim", help=VERBS["sim"].help, description=DESCRIPTION)
    add_simulator_options(sim)
    sim.set_defaults(run=run_sim)


def run_sim(args: argparse.Namespace) -> int:
    """Bind, print the JSON line, serve until a signal (uvicorn handles SIGINT/SIGTERM).

    Raises:
        ValueError: a host that is not loopback without ``--allow-remote``, or a ``--state`` that is no state.
        OSError: the address cannot be bound.
    """
    from ims_nb.sim.server import bind, build_simulation, check_host, endpoint_of, info_of, uvicorn_server

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
    server = uvicorn_server(simulation)
    print(json.dumps(info_of(simulation, endpoint_of(sock)).as_json_dict()), flush=True)
    server.run(sockets=[sock])
    return 0
