"""Where a ledger lives: the default file or database URL, a simulator's own file, the one a client's exports use."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from ims_nb.client.config import on_simulator
from ims_nb.errors import ConfigError
from ims_nb.exports import engines

if TYPE_CHECKING:
    from ims_nb.client.protocol import ConnectionLike

#: Set by ``ims-nb lab``: the ledger of the exports sent to its simulator.
ENV_SIM_LEDGER = "IMS_NB_SIM_LEDGER"
ENV_LEDGER = "IMS_NB_LEDGER"


def default_location() -> str | Path:
    """``$IMS_NB_LEDGER`` (a path, or a URL: ``sqlite:///...``, ``postgresql://...``), else ``default_path()``."""
    value = os.environ.get(ENV_LEDGER)
    return value if value and engines.is_url(value) else default_path()


def default_path() -> Path:
    """``$IMS_NB_LEDGER``, else ``ims-nb/ledger.sqlite`` under the user's data directory (a file's path: a URL in
    the variable is refused here, ``default_location`` takes it)."""
    value = os.environ.get(ENV_LEDGER)
    if value:
        if engines.is_url(value):
            raise ConfigError(f"${ENV_LEDGER} holds a database URL, not a file's path")
        return Path(value)
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "ims-nb" / "ledger.sqlite"


def simulator_path(endpoint: str, *, shared: bool = False) -> Path:
    """A ledger for exports to a simulator: ``$IMS_NB_SIM_LEDGER`` (set by ``ims-nb lab``), else a file in the
    temporary folder for this process and simulator (its state dies with it, so does this ledger), or with
    ``shared`` for the simulator alone (one that runs apart, used by several processes)."""
    if os.environ.get(ENV_SIM_LEDGER):
        return Path(os.environ[ENV_SIM_LEDGER])
    port = endpoint.rsplit(":", 1)[-1].strip("/")
    name = f"ims-nb-sim-{port}" if shared else f"ims-nb-sim-{os.getpid()}-{port}"
    return Path(tempfile.gettempdir()) / f"{name}.sqlite"


def location_for(client: ConnectionLike) -> str | Path:
    """Where ``ledger_for`` keeps a client's exports: ``default_location()``; a simulator's ``path_for``, or a URL."""
    sim = os.environ.get(ENV_SIM_LEDGER, "")  # ``ims-nb app --ledger URL``: a simulator's exports in a database
    return default_location() if not on_simulator(client) else sim if engines.is_url(sim) else path_for(client)


def path_for(client: ConnectionLike) -> Path:
    """The ledger file of a client's exports: a simulator's never go to the real default ledger.

    A simulator this process runs gets a file of this process; one running apart (``ims-nb sim``) a file of its
    endpoint, shared by the processes that use it (``ims-nb export --sim`` then ``ims-nb jobs --watch --sim``).
    """
    if not on_simulator(client):
        return default_path()
    embedded = getattr(client.settings, "simulator", None) is not None
    return simulator_path(client.settings.endpoints.ims, shared=not embedded)
