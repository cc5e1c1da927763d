"""``ims-nb lab``: the simulator and JupyterLab on ``notebooks/``, pointed at it, with no pop-up in the way."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from types import FrameType
from typing import Any

from ims_nb.ledger import ENV_SIM_LEDGER

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


def run_lab(args: argparse.Namespace) -> int:
    """The simulator in a child process, JupyterLab in another, both stopped together."""
    sim_cmd = [
        sys.executable,
        "-m",
        "ims_nb",
        "sim",
        "--host",
        args.host,
        "--port",
        str(args.port),
        "--seed",
        str(args.seed),
        "--images",
        str(args.images),
        "--region",
        args.region,
    ]
    sim_cmd += ["--manual-clock"] if args.manual_clock else ["--time-scale", str(args.time_scale)]
    if args.state:
        sim_cmd += ["--state", str(args.state)]
    sim = subprocess.Popen(sim_cmd, stdout=subprocess.PIPE, text=True)
    assert sim.stdout is not None
    first = sim.stdout.readline()
    if not first:
        sim.wait()
        print("ims-nb lab: the simulator did not start", file=sys.stderr)
        return 1
    line = json.loads(first)
    env = lab_environment(line, args.state)
    write_lab_settings(Path(sys.prefix))
    print(
        f"ims-nb lab: SIMULATOR at {line['endpoint']} (region {line['region']}); JupyterLab on port {args.lab_port}; "
        f"exports to the simulator are recorded in {env[ENV_SIM_LEDGER]}",
        flush=True,
    )
    lab = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--allow-root",
            "--ServerApp.ip=127.0.0.1",
            f"--port={args.lab_port}",
            f"--ServerApp.root_dir={args.notebooks}",
            "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            *([f"--ServerApp.token={args.lab_token}"] if args.lab_token is not None else []),
        ],
        env=env,
    )

    def stop(signum: int, frame: FrameType | None) -> None:
        lab.terminate()

    signal.signal(signal.SIGTERM, stop)
    try:
        code = lab.wait()
    except KeyboardInterrupt:
        lab.terminate()
        code = lab.wait()
    finally:
        sim.terminate()
        sim.wait(timeout=10)
    return 0 if code in (0, -signal.SIGTERM) else code
