"""``ims-nb lab``: the simulator and JupyterLab on a git-ignored copy of ``notebooks/``, in child processes."""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ims_nb._extras import require
from ims_nb.cli._children import (
    LOOPBACK,
    exit_code,
    first_free_port,
    simulator_for_children,
    stopped_together,
    wait_listening,
)
from ims_nb.cli._ledgers import add_ledger_option, kernel_ledger
from ims_nb.cli._options import add_simulator_options, port
from ims_nb.cli._verbs import VERBS
from ims_nb.client import config

#: The checkout this package runs from (``make install`` installs it editable), when it holds ``notebooks/``.
CHECKOUT = Path(__file__).resolve().parents[2]
#: The git-ignored folder the lab serves: ``notebooks/`` (copied from the project's) and ``data`` (a link to its).
LAB_COPY = ".lab"
DEFAULT_LAB_PORT = 8888
#: What ``scrub_credentials`` writes in a saved notebook instead of the simulator's AK and SK.
SCRUBBED = "<simulator credential>"
#: The file beside a file ledger (else in a private temporary folder) that holds the simulator's JSON line (its SK
#: too) while the lab runs.
SIMULATOR_FILE = "simulator.json"

#: JupyterLab settings ``ims-nb lab`` makes sure of: no news toast, no update check, no kernel dialog.
LAB_OVERRIDES: dict[str, dict[str, Any]] = {
    "@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/notebook-extension:tracker": {"autoStartDefaultKernel": True},
}


def default_project() -> Path:
    """The checkout holding this package if it has ``notebooks/``, else the current folder."""
    return CHECKOUT if (CHECKOUT / "notebooks").is_dir() else Path.cwd()


def add_lab_parser(verbs: Any) -> None:
    """Register ``lab`` on ``verbs``, the ``ims-nb`` parser's sub-parsers (an argparse private type)."""
    lab: argparse.ArgumentParser = verbs.add_parser("lab", help=VERBS["lab"].help)
    add_simulator_options(lab)
    add_ledger_option(lab, "the simulator's own, beside --state or in a temporary folder")
    lab.add_argument("--lab-port", type=port, default=DEFAULT_LAB_PORT,
                     help=f"JupyterLab's port (default {DEFAULT_LAB_PORT}, or the next free one)")  # fmt: skip
    lab.add_argument("--project", type=Path, default=None,
                     help="the project whose notebooks/ the lab copies (default: this checkout)")  # fmt: skip
    lab.add_argument("--fresh", action="store_true",
                     help=f"copy notebooks/ to {LAB_COPY}/notebooks again, replacing your changes there")  # fmt: skip
    lab.add_argument("--notebooks", type=Path, default=None,
                     help=f"serve this folder as it is, instead of the working copy in {LAB_COPY}/")  # fmt: skip
    lab.add_argument("--lab-token", default=None, help="JupyterLab's token (default: a random one, printed)")
    lab.set_defaults(run=run_lab)


def prepare_lab_copy(project: Path, *, fresh: bool = False) -> Path:
    """The working copy ``<project>/.lab/notebooks`` the lab serves, so a session never changes tracked files.

    Notebooks missing from the copy are copied from ``<project>/notebooks``; those already there are kept (the
    user's work), unless ``fresh``. ``.lab/data`` links to ``<project>/data``, so ``../data`` reads the sample
    and writes the git-ignored snapshots as from the committed notebooks.
    """
    lab = project / LAB_COPY
    copy = lab / "notebooks"
    if fresh and copy.exists():
        shutil.rmtree(copy)
    copy.mkdir(parents=True, exist_ok=True)
    for source in sorted((project / "notebooks").iterdir()):
        if source.is_file() and not (copy / source.name).exists():
            shutil.copy2(source, copy / source.name)
    data = lab / "data"
    if not data.is_symlink() and not data.exists():
        data.symlink_to(Path("..", "data"), target_is_directory=True)
    return copy


def scrub_credentials(model: dict[str, Any], **_: Any) -> None:
    """JupyterLab's pre-save hook: the simulator's AK and SK (from ``$IMS_NB_SIM``) never reach a saved file."""
    raw = os.environ.get(config.ENV_SIMULATOR)
    if not raw or model.get("type") != "notebook" or not isinstance(model.get("content"), dict):
        return
    line = config.parse_simulator_line(raw, f"${config.ENV_SIMULATOR}")
    text = json.dumps(model["content"])
    for secret in (line["sk"], line["ak"]):
        text = text.replace(json.dumps(secret)[1:-1], SCRUBBED) if secret else text
    model["content"] = json.loads(text)


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


def lab_command(notebooks: Path, lab_port: int, token: str) -> list[str]:
    """JupyterLab on ``notebooks``, loopback only, exactly on ``lab_port``, scrubbing credentials on save."""
    return [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", f"--ServerApp.ip={LOOPBACK}",
            f"--port={lab_port}", "--ServerApp.port_retries=0", f"--ServerApp.root_dir={notebooks}",
            f"--ServerApp.token={token}", f"--FileContentsManager.pre_save_hook={__name__}.scrub_credentials",
            "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]  # fmt: skip


def ledger_folder(ledger: str | Path) -> Path | None:
    """The folder of a file ledger (a path or ``sqlite:///``); None for a database server's URL."""
    from ims_nb.exports import engines

    ledger_file = engines.sqlite_path(engines.ledger_url(ledger))
    return ledger_file.parent if ledger_file else None


def simulator_file(line: dict[str, str], ledger: str | Path) -> Path:
    """The simulator's JSON line in a file only its owner reads: beside a file ledger, else (a database server's
    URL) in a new private temporary folder (``mkdtemp``'s mode 0700)."""
    path = (ledger_folder(ledger) or Path(tempfile.mkdtemp(prefix="ims-nb-lab-"))) / SIMULATOR_FILE
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text(json.dumps(line) + "\n")
    return path


@contextmanager
def simulator_file_while_running(line: dict[str, str], ledger: str | Path) -> Iterator[Path]:
    """``simulator_file`` for the time of a ``with`` block: removed on leaving it (normally, by Ctrl-C or by
    SIGTERM, which ``stopped_together`` turns into Ctrl-C), with its temporary folder if it has one, so the
    simulator's SK does not outlive the lab."""
    path = simulator_file(line, ledger)
    try:
        yield path
    finally:
        if ledger_folder(ledger) is None:
            shutil.rmtree(path.parent, ignore_errors=True)
        path.unlink(missing_ok=True)


def export_line(path: Path) -> str:
    """The shell line that points the CLI and other kernels at the simulator in ``path`` (without printing its SK)."""
    return f'export {config.ENV_SIMULATOR}="$(cat {path})"'


def lab_ledger(args: argparse.Namespace) -> str | None:
    """``--ledger`` as the kernels get it (a file's path made absolute: they run in the notebooks' folder), opened
    once here so that one that cannot be opened fails in one line before anything starts (None: not given).

    Raises:
        ConfigError: the ledger cannot be opened (a server that does not answer, a file that cannot be written).
    """
    from ims_nb.exports.ledger import Ledger

    location = kernel_ledger(args)
    if location is not None:
        Ledger(location).close()
    return location


def simulator_line(line: dict[str, str], ledger: str | Path) -> str:
    """The startup line: the simulator, and where its exports are recorded (a URL without its password)."""
    from ims_nb.exports import upkeep

    return (f"ims-nb lab: SIMULATOR at {line['endpoint']} (region {line['region']}); exports to the simulator "
            f"are recorded in {upkeep.where(ledger)}")  # fmt: skip


def run_lab(args: argparse.Namespace) -> int:
    """The simulator in a child process, JupyterLab in another, both stopped together."""
    from ims_nb.exports.ledger import ENV_SIM_LEDGER

    require("ims-nb lab", "lab")
    given = lab_ledger(args)
    notebooks = args.notebooks
    if notebooks is None:
        project = args.project or default_project()
        if not (project / "notebooks").is_dir():
            print(f"ims-nb lab: no notebooks/ in {project}: run it in the project or pass --project DIR",
                  file=sys.stderr)  # fmt: skip
            return 2
        notebooks = prepare_lab_copy(project, fresh=args.fresh)
    with stopped_together() as children:
        started = simulator_for_children(args, children)
        if isinstance(started, int):
            return started
        line, env = started
        env.update({} if given is None else {ENV_SIM_LEDGER: given})  # the kernels' ledger: as ``ims-nb app``'s
        write_lab_settings(Path(sys.prefix))
        print(simulator_line(line, env[ENV_SIM_LEDGER]), flush=True)
        lab_port, token = first_free_port(args.lab_port), args.lab_token or secrets.token_hex(24)
        with simulator_file_while_running(line, env[ENV_SIM_LEDGER]) as sim_file:
            children.append(subprocess.Popen(lab_command(notebooks, lab_port, token), env=env, text=True))
            try:
                announce(notebooks, lab_port, token, sim_file, children[-1])
            except KeyboardInterrupt:
                return 0
            return exit_code(children[-1])


def announce(notebooks: Path, lab_port: int, token: str, sim_file: Path, lab: subprocess.Popen[str]) -> None:
    """Once JupyterLab answers: its real URL, what it serves, and how to point other shells at the simulator."""
    if not wait_listening(lab_port, lab):
        return
    print(f"ims-nb lab: JupyterLab at http://{LOOPBACK}:{lab_port}/lab?token={token} on {notebooks}", flush=True)
    print(f"ims-nb lab: to point the CLI and other kernels at this simulator: {export_line(sim_file)}", flush=True)
