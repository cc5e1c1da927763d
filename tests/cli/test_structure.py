"""The CLI's shape: one module per verb, verbs that never import each other, and a start without pandas."""

from __future__ import annotations

import argparse
import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import ims_nb.cli
from ims_nb.cli._main import build_parser
from ims_nb.cli._verbs import VERBS

CLI = Path(ims_nb.cli.__file__).parent
PACKAGE = "ims_nb.cli"
#: Top-level packages the ``ims-nb`` command must start without (``--help`` and ``sim``).
HEAVY = ("pandas", "matplotlib", "ipywidgets")
#: Seconds ``ims-nb sim`` may take to print its line.
SIM_START_TIMEOUT = 60.0


def verb_modules() -> set[str]:
    """The verb modules of ``ims_nb/cli``: those without a leading underscore."""
    return {path.stem for path in CLI.glob("*.py") if not path.stem.startswith("_")}


def imported_cli_modules(path: Path) -> set[str]:
    """The ``ims_nb.cli`` modules ``path`` imports (at any depth: lazy imports count)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.ImportFrom):  # relative: from . import x, from .x import y
            names = [f"{PACKAGE}.{node.module}" if node.module else PACKAGE]
            names += [f"{names[0]}.{alias.name}" for alias in node.names]
        else:
            continue
        found |= {name.split(".")[2] for name in names if name.startswith(PACKAGE + ".")}
    return found


@pytest.mark.parametrize("verb", sorted(verb_modules()))
def test_a_verb_module_imports_no_other_verb_module(verb: str) -> None:
    others = imported_cli_modules(CLI / f"{verb}.py") & (verb_modules() - {verb})
    assert not others, f"ims_nb/cli/{verb}.py imports the verb modules {sorted(others)}: share through a _module"


def test_the_import_graph_check_sees_lazy_and_relative_imports(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        "from ims_nb.cli import jobs\nimport ims_nb.cli.lab\ndef f():\n    from ims_nb.cli.sim import run_sim\n"
        "    from .images import x\n    from . import app\nfrom ims_nb.cli._options import port\n"
    )
    assert imported_cli_modules(module) == {"jobs", "lab", "sim", "images", "app", "_options"}


def test_every_verb_has_its_module_and_every_verb_module_is_a_verb() -> None:
    assert set(VERBS) == verb_modules()
    for name, verb in VERBS.items():
        assert verb.module == f"{PACKAGE}.{name}", name


def test_the_parser_has_exactly_the_verbs_of_the_table() -> None:
    parser = build_parser()
    [verbs] = [action for action in parser._actions if action.dest == "verb"]
    choices: dict[str, argparse.ArgumentParser] = dict(verbs.choices or {})
    assert list(choices) == list(VERBS)
    for name, sub_parser in choices.items():
        assert callable(sub_parser.get_default("run")), name  # main runs every verb the same way


def clean_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HUAWEICLOUD_SDK_", "IMS_NB_"))}
    env["HOME"] = str(home)
    env["PYTHONPATH"] = os.pathsep.join([str(CLI.parent.parent), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def imported_packages(importtime: str) -> set[str]:
    """The top-level packages named in ``-X importtime`` output."""
    lines = (line.rsplit("|", 1)[-1] for line in importtime.splitlines() if line.startswith("import time:"))
    return {name.strip().split(".")[0] for name in lines}


def test_ims_nb_help_starts_without_pandas_matplotlib_or_ipywidgets(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "ims_nb", "--help"],
        capture_output=True, text=True, env=clean_env(tmp_path), timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0 and "ims-nb" in done.stdout, done.stderr[-2000:]
    loaded = imported_packages(done.stderr)
    assert "ims_nb" in loaded and "argparse" in loaded  # the output is what we think it is
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))
    # only the verb given is built: `ims-nb --help` loads no client and no server (about as fast as `import httpx`)
    assert not loaded & {"httpx", "starlette", "uvicorn"}, sorted(loaded & {"httpx", "starlette", "uvicorn"})


def test_ims_nb_sim_serves_without_pandas_matplotlib_or_ipywidgets(tmp_path: Path) -> None:
    sim = subprocess.Popen(
        [sys.executable, "-X", "importtime", "-m", "ims_nb", "sim", "--images", "3"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean_env(tmp_path),
    )  # fmt: skip
    try:
        assert sim.stdout is not None
        line = json.loads(sim.stdout.readline())
        assert set(line) == {"endpoint", "region", "project_id", "ak", "sk"}
    finally:
        sim.terminate()
        _, err = sim.communicate(timeout=SIM_START_TIMEOUT)
    loaded = imported_packages(err)
    assert "uvicorn" in loaded  # it served
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))
