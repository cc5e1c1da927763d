"""``ims-nb lab``: the simulator and JupyterLab on ``notebooks/``, pointed at it; the child handling ``app`` shares."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

from ims_nb.exports.ledger import ENV_SIM_LEDGER

#: Seconds a child has to stop after SIGTERM before it is killed.
STOP_TIMEOUT = 20.0

#: JupyterLab settings ``ims-nb lab`` makes sure of: no news toast, no update check, no kernel dialog.
LAB_OVERRIDES: dict[str, dict[str, Any]] = {
    "@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/notebook-extension:tracker": {"autoStartDefaultKernel": True},
}


def lab_environment(line: dict[str, str], state: Path | None) -> dict[str, str]:
    """JupyterLab's environment: the simulator's JSON line, its region, and the ledger of its exports.

    With ``--state`` the ledger lives beside the simulator's state (both survive a restart); without, in a
    fresh temporary folder (both end with the session).
    """
    ledger = Path(f"{state}.ledger.sqlite") if state else Path(tempfile.mkdtemp(prefix="ims-nb-lab-")) / "ledger.sqlite"
    return dict(os.environ, IMS_NB_SIM=json.dumps(line), HUAWEICLOUD_SDK_REGION=line["region"],
                **{ENV_SIM_LEDGER: str(ledger)})  # fmt: skip


def write_lab_settings(prefix: Path) -> Path:
    """Merge ``LAB_OVERRIDES`` into ``<prefix>/share/jupyter/lab/settings/overrides.json`` (keeping other keys)."""
    path = prefix / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
    try:
        current = json.loads(path.read_text()) if path.exists() else {}
    except ValueError:
        current = {}
    if not isinstance(current, dict):
        current = {}
    for plugin, values in LAB_OVERRIDES.items():
        kept = current.get(plugin)
        current[plugin] = {**(kept if isinstance(kept, dict) else {}), **values}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(current, indent=2) + "\n")
    return path


def sim_command(args: argparse.Namespace) -> list[str]:
    """``ims-nb sim`` with the simulator options of ``lab`` or ``app``."""
    command = [sys.executable, "-m", "ims_nb", "sim", f"--host={args.host}", f"--port={args.port}",
               f"--seed={args.seed}", f"--images={args.images}", f"--region={args.region}"]  # fmt: skip
    command += ["--manual-clock"] if args.manual_clock else [f"--time-scale={args.time_scale}"]
    return command + ([f"--state={args.state}"] if args.state else [])  # one word each: a value may start with "-"


def lab_command(args: argparse.Namespace) -> list[str]:
    """JupyterLab on ``--notebooks``, loopback only, with no news or update check."""
    token = [f"--ServerApp.token={args.lab_token}"] if args.lab_token is not None else []
    return [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ServerApp.ip=127.0.0.1",
            f"--port={args.lab_port}", f"--ServerApp.root_dir={args.notebooks}", "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate", *token]  # fmt: skip


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


def start_simulator(command: list[str], children: list[subprocess.Popen[str]]) -> dict[str, str] | None:
    """Start the simulator (``sim_command``; added to ``children``); its JSON line, or None if it did not start."""
    sim = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    children.append(sim)
    assert sim.stdout is not None
    first = sim.stdout.readline()
    if not first:
        sim.wait()
        return None
    line: dict[str, str] = json.loads(first)
    return line


def exit_code(child: subprocess.Popen[str]) -> int:
    """Wait for the main child; 0 when it ends normally, by SIGTERM, or when we are interrupted."""
    try:
        code = child.wait()
    except KeyboardInterrupt:
        return 0
    return 0 if code in (0, -signal.SIGTERM) else code


def run_lab(args: argparse.Namespace) -> int:
    """The simulator in a child process, JupyterLab in another, both stopped together."""
    with stopped_together() as children:
        try:
            line = start_simulator(sim_command(args), children)
        except KeyboardInterrupt:
            return 0
        if line is None:
            print("ims-nb lab: the simulator did not start", file=sys.stderr)
            return 1
        env = lab_environment(line, args.state)
        write_lab_settings(Path(sys.prefix))
        print(
            f"ims-nb lab: SIMULATOR at {line['endpoint']} (region {line['region']}); JupyterLab on port "
            f"{args.lab_port}; exports to the simulator are recorded in {env[ENV_SIM_LEDGER]}",
            flush=True,
        )
        children.append(subprocess.Popen(lab_command(args), env=env, text=True))
        return exit_code(children[-1])
