"""``ims-nb lab``: the simulator and JupyterLab on ``notebooks/``, pointed at it, in child processes."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from ims_nb._extras import require
from ims_nb.cli._children import exit_code, simulator_for_children, stopped_together
from ims_nb.cli._options import add_simulator_options, port
from ims_nb.cli._verbs import VERBS

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
DEFAULT_LAB_PORT = 8888

#: JupyterLab settings ``ims-nb lab`` makes sure of: no news toast, no update check, no kernel dialog.
LAB_OVERRIDES: dict[str, dict[str, Any]] = {
    "@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/notebook-extension:tracker": {"autoStartDefaultKernel": True},
}


def add_lab_parser(verbs: Any) -> None:
    """Register ``lab`` on ``verbs``, the ``ims-nb`` parser's sub-parsers (an argparse private type)."""
    lab: argparse.ArgumentParser = verbs.add_parser("lab", help=VERBS["lab"].help)
    add_simulator_options(lab)
    lab.add_argument("--lab-port", type=port, default=DEFAULT_LAB_PORT, help="JupyterLab port")
    lab.add_argument("--notebooks", type=Path, default=NOTEBOOKS, help="folder JupyterLab opens")
    lab.add_argument("--lab-token", default=None, help="JupyterLab's token (default: a random one, in its log)")
    lab.set_defaults(run=run_lab)


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


def lab_command(args: argparse.Namespace) -> list[str]:
    """JupyterLab on ``--notebooks``, loopback only, with no news or update check."""
    token = [f"--ServerApp.token={args.lab_token}"] if args.lab_token is not None else []
    return [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ServerApp.ip=127.0.0.1",
            f"--port={args.lab_port}", f"--ServerApp.root_dir={args.notebooks}", "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate", *token]  # fmt: skip


def run_lab(args: argparse.Namespace) -> int:
    """The simulator in a child process, JupyterLab in another, both stopped together."""
    from ims_nb.exports.ledger import ENV_SIM_LEDGER

    require("ims-nb lab", "lab")
    with stopped_together() as children:
        started = simulator_for_children(args, children)
        if isinstance(started, int):
            return started
        line, env = started
        write_lab_settings(Path(sys.prefix))
        print(
            f"ims-nb lab: SIMULATOR at {line['endpoint']} (region {line['region']}); JupyterLab on port "
            f"{args.lab_port}; exports to the simulator are recorded in {env[ENV_SIM_LEDGER]}",
            flush=True,
        )
        children.append(subprocess.Popen(lab_command(args), env=env, text=True))
        return exit_code(children[-1])
