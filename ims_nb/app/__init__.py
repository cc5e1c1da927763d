"""The export app: the notebook ``ims-nb app`` serves with Voilà, and the one call its cell makes."""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from ims_nb.client.connection import connect
from ims_nb.errors import SimulatorWarning
from ims_nb.exports.ledger import ledger_for

if TYPE_CHECKING:
    from ims_nb.widgets.dashboard import ExportDashboard

__all__ = ["NOTEBOOK", "TEMPLATE", "open_dashboard", "simulator_notice_silenced", "voila_env"]

#: The app's notebook (package data): an import and ``open_dashboard()``, stored with no outputs.
NOTEBOOK: Final = Path(__file__).resolve().with_name("export_app.ipynb")
#: A Jupyter data directory of package data, holding the Voilà template ``TEMPLATE``.
DATA_DIR: Final = Path(__file__).resolve().with_name("jupyter")
#: Voilà's lab template without its CDN links (the Font Awesome they load is bundled in Voilà's own static files):
#: the app's page asks nothing of any host but its own.
TEMPLATE: Final = "ims-nb"
#: The embedded simulator's options when the app runs with neither credentials nor ``ims-nb app``'s simulator.
APP_SIMULATOR: Final = {"time_scale": 600}
SIMULATOR_PREFIX: Final = "SIMULATOR:"


class _DropSimulatorNotice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(SIMULATOR_PREFIX)


@contextmanager
def simulator_notice_silenced() -> Iterator[None]:
    """Inside: no ``SimulatorWarning`` and no ``SIMULATOR:`` log line (a page says it with a banner instead)."""
    logger, notice = logging.getLogger("ims_nb"), _DropSimulatorNotice()
    logger.addFilter(notice)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SimulatorWarning)
            yield
    finally:
        logger.removeFilter(notice)


def voila_env(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` with ``DATA_DIR`` first on ``JUPYTER_PATH``, so that Voilà finds ``TEMPLATE``."""
    paths = [str(DATA_DIR), *(p for p in env.get("JUPYTER_PATH", "").split(os.pathsep) if p)]
    return {**env, "JUPYTER_PATH": os.pathsep.join(paths)}


def open_dashboard(*, ledger: str | Path | None = None, simulator: dict[str, Any] | None = None) -> ExportDashboard:
    """Connect (your account, ``ims-nb app``'s simulator, or a new one), open the ledger, and build the dashboard.

    Args:
        ledger: the ledger's path or URL (``postgresql://USER@HOST/DB``: its password from ``$PGPASSWORD`` or
            ``~/.pgpass``, never in a notebook); default ``ledger_for``'s: ``$IMS_NB_LEDGER`` on an account,
            the simulator's own ledger (``$IMS_NB_SIM_LEDGER`` under ``ims-nb app``) on a simulator.
        simulator: options of an embedded simulator, started only when no credentials and no ``$IMS_NB_SIM`` are
            found (default ``APP_SIMULATOR``).

    Raises:
        ConfigError: as ``ims_nb.connect``.
    """
    from ims_nb.widgets.dashboard import ExportDashboard

    with simulator_notice_silenced():
        client = connect(simulator=dict(APP_SIMULATOR if simulator is None else simulator))
    return ExportDashboard(client, ledger_for(client, ledger))
