"""Child processes of ``lab`` and ``app``: the simulator they start, its environment, and stopping them together."""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

from ims_nb.cli._options import MAX_PORT
from ims_nb.client import config

#: Seconds a child has to stop after SIGTERM before it is killed.
STOP_TIMEOUT = 20.0
#: The loopback address ``lab`` and ``app`` serve on.
LOOPBACK = "127.0.0.1"
#: How many ports after the asked one ``first_free_port`` tries (Jupyter's own ``port_retries`` default).
PORT_TRIES = 50
#: Where the official SDK (huaweicloudsdkcore) reads its per-region endpoint overrides (``regions.yaml``).
ENV_SDK_REGIONS_FILE = "HUAWEICLOUD_SDK_REGIONS_FILE"


def sim_command(args: argparse.Namespace) -> list[str]:
    """``ims-nb sim`` with the simulator options of ``lab`` or ``app`` (``--allow-remote`` too)."""
    command = [sys.executable, "-m", "ims_nb", "sim", f"--host={args.host}", f"--port={args.port}",
               f"--seed={args.seed}", f"--images={args.images}", f"--region={args.region}"]  # fmt: skip
    command += ["--manual-clock"] if args.manual_clock else [f"--time-scale={args.time_scale}"]
    command += [f"--state={args.state}"] if args.state else []  # one word each: a value may start with "-"
    command += [f"--regions={','.join(args.regions)}"] if args.regions else []
    command += [f"--regions-file={args.regions_file}"] if args.regions_file else []
    return command + (["--allow-remote"] if args.allow_remote else [])


def sim_ledger(state: Path | None) -> Path:
    """Where the exports to a simulator ``lab`` or ``app`` started are recorded.

    With ``--state`` the ledger lives beside the simulator's state (both survive a restart); without, in a
    fresh temporary folder (both end with the session).
    """
    return Path(f"{state}.ledger.sqlite") if state else Path(tempfile.mkdtemp(prefix="ims-nb-lab-")) / "ledger.sqlite"


def sim_regions_file(state: Path | None) -> Path:
    """Where ``lab`` has a multi-region simulator write the SDK's ``regions.yaml``: beside the state, or in a
    fresh temporary folder."""
    return Path(f"{state}.regions.yaml") if state else Path(tempfile.mkdtemp(prefix="ims-nb-lab-")) / "regions.yaml"


def lab_environment(line: dict[str, str], state: Path | None) -> dict[str, str]:
    """A child's environment: the simulator's JSON line, its region, and the ledger of its exports."""
    from ims_nb.exports.ledger import ENV_SIM_LEDGER

    return dict(os.environ, **{config.ENV_SIMULATOR: json.dumps(line), config.ENV_REGION: line["region"],
                               ENV_SIM_LEDGER: str(sim_ledger(state))})  # fmt: skip


def _interrupted(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # SIGTERM stops the children as Ctrl-C does


@contextmanager
def stopped_together() -> Iterator[list[subprocess.Popen[str]]]:
    """A list to put child processes in; on leaving (normally, by Ctrl-C or by SIGTERM) each is stopped, last first."""
    children: list[subprocess.Popen[str]] = []
    previous = signal.signal(signal.SIGTERM, _interrupted)
    try:
        yield children
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not cut the stopping short
        try:
            for child in reversed(children):
                stop_child(child)
        finally:
            signal.signal(signal.SIGTERM, previous)


def stop_child(child: subprocess.Popen[str], timeout: float = STOP_TIMEOUT) -> int:
    """SIGTERM, then SIGKILL after ``timeout`` seconds; returns the exit code."""
    if child.poll() is None:
        child.terminate()
        try:
            return child.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            child.kill()
    return child.wait()


def start_simulator(args: argparse.Namespace, children: list[subprocess.Popen[str]]) -> dict[str, str] | None:
    """Start ``sim_command(args)`` (added to ``children``); its JSON line, or None if it did not start (said on
    stderr, under the verb's name; the child has said why)."""
    sim = subprocess.Popen(sim_command(args), stdout=subprocess.PIPE, text=True)
    children.append(sim)
    assert sim.stdout is not None
    first = sim.stdout.readline()
    if not first:
        sim.wait()
        print(f"ims-nb {args.verb}: the simulator did not start", file=sys.stderr)
        return None
    line: dict[str, str] = json.loads(first)
    return line


def simulator_for_children(
    args: argparse.Namespace, children: list[subprocess.Popen[str]]
) -> tuple[dict[str, str], dict[str, str]] | int:
    """Start the child simulator: its JSON line and the environment for the other children, or the exit code
    when it did not start (1) or the user interrupted its start (0).

    With ``--regions``, the simulator writes the SDK's ``regions.yaml`` (``--regions-file``, else
    ``sim_regions_file``) and the children get ``$HUAWEICLOUD_SDK_REGIONS_FILE`` pointing at it, so the official
    SDK and ims-nb resolve each region's endpoint the SDK's way."""
    if args.regions and not args.regions_file:
        args.regions_file = sim_regions_file(args.state)
    try:
        line = start_simulator(args, children)
    except KeyboardInterrupt:
        return 0
    if line is None:
        return 1
    env = lab_environment(line, args.state)
    if args.regions_file:
        env[ENV_SDK_REGIONS_FILE] = str(args.regions_file)
    return line, env


def exit_code(child: subprocess.Popen[str]) -> int:
    """Wait for the main child; 0 when it ends normally, by SIGTERM, or when we are interrupted."""
    try:
        code = child.wait()
    except KeyboardInterrupt:
        return 0
    return 0 if code in (0, -signal.SIGTERM) else code


def first_free_port(port: int, host: str = LOOPBACK) -> int:
    """``port`` if nothing holds it on ``host``, else the next free one (as Jupyter and Voilà would pick).

    The child is then started on that port with its own retries off, so the port printed is the port served.
    """
    for candidate in range(port, min(port + PORT_TRIES, MAX_PORT + 1)):
        with socket.socket() as probe:
            try:
                probe.bind((host, candidate))
            except OSError:
                continue
            return candidate
    raise OSError(f"no free port on {host} from {port} to {port + PORT_TRIES - 1}")


def wait_listening(port: int, child: subprocess.Popen[str], host: str = LOOPBACK, poll: float = 0.2) -> bool:
    """Wait until ``child`` accepts connections on ``port``; False if it ended first."""
    while child.poll() is None:
        try:
            with socket.create_connection((host, port), timeout=1.0):
                return True
        except OSError:
            time.sleep(poll)
    return False
