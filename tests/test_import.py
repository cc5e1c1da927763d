"""``import ims_nb`` stays light: matplotlib, ipywidgets, IPython and the simulator load only when used."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

#: Top-level packages that ``import ims_nb`` and ``import ims_nb.widgets`` must not load.
OPTIONAL_PACKAGES = ("matplotlib", "ipywidgets", "IPython", "starlette", "uvicorn")
SIMULATOR = "ims_nb.sim"
#: Printed by every child after its statements: the modules it holds, as JSON.
REPORT = """
import json as _json, sys as _sys
_names = sorted(_sys.modules)
_sim = [n for n in _names if n == "ims_nb.sim" or n.startswith("ims_nb.sim.")]
print(_json.dumps({"top_level": sorted({n.split(".")[0] for n in _names}), "sim": _sim}))
"""


@dataclass(frozen=True)
class Loaded:
    """The modules a fresh interpreter holds after some statements."""

    top_level: frozenset[str]
    sim: frozenset[str]


def env_without_credentials(home: Path) -> dict[str, str]:
    """This environment without credentials or a running simulator, and with an empty home."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUAWEICLOUD_SDK_") and k != "IMS_NB_SIM"}
    env["HOME"] = str(home)
    return env


def loaded_after(statements: str, home: Path) -> Loaded:
    """Run ``statements`` in a fresh interpreter (clean environment) and report the modules it loaded."""
    completed = subprocess.run(
        [sys.executable, "-c", statements + "\n" + REPORT],
        capture_output=True,
        text=True,
        env=env_without_credentials(home),
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    found = json.loads(completed.stdout.splitlines()[-1])
    return Loaded(frozenset(found["top_level"]), frozenset(found["sim"]))


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("home")


@pytest.fixture(scope="module")
def after_import(home: Path) -> Loaded:
    return loaded_after("import ims_nb", home)


@pytest.fixture(scope="module")
def after_import_widgets(home: Path) -> Loaded:
    return loaded_after("import ims_nb.widgets", home)


@pytest.mark.parametrize("package", OPTIONAL_PACKAGES)
def test_import_ims_nb_leaves_optional_packages_unloaded(after_import: Loaded, package: str) -> None:
    assert "ims_nb" in after_import.top_level
    assert package not in after_import.top_level


def test_import_ims_nb_leaves_the_simulator_unloaded(after_import: Loaded) -> None:
    assert after_import.sim == frozenset()


@pytest.mark.parametrize("package", OPTIONAL_PACKAGES)
def test_import_ims_nb_widgets_leaves_optional_packages_unloaded(after_import_widgets: Loaded, package: str) -> None:
    assert package not in after_import_widgets.top_level


def test_import_ims_nb_widgets_leaves_the_simulator_unloaded(after_import_widgets: Loaded) -> None:
    assert after_import_widgets.sim == frozenset()


# --- the checks above can fail: using the feature loads the package -------------------------------


def test_connect_without_credentials_loads_the_simulator(home: Path) -> None:
    statements = """
import warnings
import ims_nb
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ims_nb.SimulatorWarning)
    client = ims_nb.connect()
client.close()
"""
    loaded = loaded_after(statements, home)
    assert SIMULATOR in loaded.sim
    assert {"starlette", "uvicorn"} <= loaded.top_level


def test_using_a_widget_loads_ipywidgets(home: Path) -> None:
    loaded = loaded_after("import ims_nb.widgets\nims_nb.widgets.LogPanel", home)
    assert "ipywidgets" in loaded.top_level
    assert loaded.sim == frozenset()
