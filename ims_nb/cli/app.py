"""``ims-nb app``: the export dashboard served by Voilà, on a simulator it starts or, with credentials, your account."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Final, NamedTuple

from ims_nb._extras import require
from ims_nb.cli._children import (
    LOOPBACK,
    exit_code,
    first_free_port,
    sim_command,
    simulator_for_children,
    stopped_together,
    wait_listening,
)
from ims_nb.cli._ledgers import LEDGER_DEFAULT, add_ledger_option, kernel_ledger
from ims_nb.cli._options import add_simulator_options, fixed_port
from ims_nb.cli._verbs import VERBS
from ims_nb.client.config import resolve_credentials, resolve_region

DEFAULT_APP_PORT: Final = 8866
#: Voilà's options besides the notebook and port: loopback only, no code shown, a failing cell says why.
VOILA_OPTIONS: Final = ("--no-browser", f"--Voila.ip={LOOPBACK}", "--Voila.port_retries=0",
                        "--VoilaConfiguration.strip_sources=True",
                        "--VoilaConfiguration.show_tracebacks=True")  # fmt: skip


class AppCommands(NamedTuple):
    """The child processes ``ims-nb app`` runs: the simulator's command (None on a real account) and Voilà's."""

    simulator: list[str] | None
    voila: list[str]


def add_app_parser(verbs: Any) -> None:
    """Register ``app`` on ``verbs``, the ``ims-nb`` parser's sub-parsers (an argparse private type)."""
    app: argparse.ArgumentParser = verbs.add_parser("app", help=VERBS["app"].help)
    add_simulator_options(app)
    add_ledger_option(app, f"{LEDGER_DEFAULT} on an account; the simulator's own on a simulator")
    app.add_argument("--app-port", type=fixed_port, default=DEFAULT_APP_PORT,
                     help=f"the app's port (default {DEFAULT_APP_PORT}, or the next free one)")  # fmt: skip
    app.set_defaults(run=run_app)


def app_url(port: int) -> str:
    return f"http://{LOOPBACK}:{port}/"


def voila_command(port: int, notebook: Path | None = None) -> list[str]:
    """Voilà serving ``notebook`` (default: the app's) at ``app_url(port)``, with the app's template (in the
    environment of ``ims_nb.app.voila_env``)."""
    from ims_nb.app import NOTEBOOK, TEMPLATE

    return [sys.executable, "-m", "voila", str(notebook or NOTEBOOK), f"--port={port}", *VOILA_OPTIONS,
            f"--VoilaConfiguration.template={TEMPLATE}"]  # fmt: skip


def on_account() -> bool:
    """Whether real credentials are configured (environment or the SDK's credentials file): then no simulator."""
    return resolve_credentials(None, None, None, None) is not None


def app_commands(args: argparse.Namespace, *, account: bool, port: int | None = None) -> AppCommands:
    """What ``ims-nb app`` runs: a simulator unless on a real ``account``, and Voilà on the app's notebook (on
    ``port``, default ``--app-port``)."""
    return AppCommands(None if account else sim_command(args), voila_command(port or args.app_port))


def run_app(args: argparse.Namespace) -> int:
    """The simulator (unless credentials are configured) and Voilà in child processes, stopped together."""
    from ims_nb.app import voila_env
    from ims_nb.exports import upkeep
    from ims_nb.exports.ledger import ENV_LEDGER, ENV_SIM_LEDGER, default_location

    require("ims-nb app", "lab")
    port = first_free_port(args.app_port)
    commands = app_commands(args, account=on_account(), port=port)
    given = kernel_ledger(args)  # Voilà's kernels run elsewhere
    chosen = {} if given is None else {ENV_SIM_LEDGER if commands.simulator else ENV_LEDGER: given}
    with stopped_together() as children:
        if commands.simulator is None:
            env = dict(os.environ, **chosen)
            where = (f"on your account (region {resolve_region(None)}); exports are recorded in "
                     f"{upkeep.where(given or default_location())}")  # fmt: skip
        else:
            started = simulator_for_children(args, children)
            if isinstance(started, int):
                return started
            line, env = started
            env.update(chosen)
            where = (f"on the SIMULATOR at {line['endpoint']} (region {line['region']}); exports to the simulator "
                     f"are recorded in {upkeep.where(env[ENV_SIM_LEDGER])}")  # fmt: skip
        children.append(subprocess.Popen(commands.voila, env=voila_env(env), text=True))
        try:
            if wait_listening(port, children[-1]):
                print(f"ims-nb app: {app_url(port)} {where}", flush=True)
        except KeyboardInterrupt:
            return 0
        return exit_code(children[-1])
