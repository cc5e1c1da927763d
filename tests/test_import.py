"""`import ims_nb` and the CLI start light: matplotlib, ipywidgets, pandas and the simulator load only when used."""

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


# --- the command line starts light: `ims-nb --help` and `ims-nb sim` load no pandas, matplotlib, ipywidgets ---

#: What the data layer, the charts and the widgets load; the command line's start needs none of them.
HEAVY_PACKAGES = ("pandas", "numpy", "matplotlib", "ipywidgets", "IPython")


def started_modules(argv: list[str], home: Path) -> frozenset[str]:
    """Top-level packages ``python -m ims_nb ARGV`` has imported once it printed its first line (then stopped)."""
    command = [sys.executable, "-X", "importtime", "-m", "ims_nb", *argv]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          env=env_without_credentials(home)) as child:  # fmt: skip
        assert child.stdout is not None and child.stderr is not None
        first = child.stdout.readline()
        child.terminate()
        _, errors = child.communicate(timeout=60)
    assert first, errors[-2000:]
    lines = (line.split("|")[-1].strip() for line in errors.splitlines() if line.startswith("import time:"))
    return frozenset(name.split(".")[0] for name in lines if name and name != "package")


@pytest.mark.parametrize("argv", [["--help"], ["sim", "--port", "0"]], ids=["help", "sim"])
def test_the_command_line_starts_without_the_data_and_notebook_packages(argv: list[str], home: Path) -> None:
    loaded = started_modules(argv, home)
    assert "ims_nb" in loaded
    assert not loaded & set(HEAVY_PACKAGES), sorted(loaded & set(HEAVY_PACKAGES))


def test_ims_nb_help_imports_neither_the_client_nor_the_simulator(home: Path) -> None:
    loaded = started_modules(["--help"], home)
    assert not loaded & {"httpx", "starlette", "uvicorn"}, "ims-nb --help should cost about `import httpx`"
