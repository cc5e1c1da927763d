"""House rules the suite enforces: ruff (lint and format, notebooks included) and mypy strict on the package."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


@pytest.mark.parametrize(
    "command",
    [
        ["ruff", "check", "ims_nb", "tests", "benchmarks", "tools", "notebooks"],
        ["ruff", "format", "--check", "ims_nb", "tests", "benchmarks", "tools", "notebooks"],
        ["mypy"],
    ],
    ids=["ruff-check", "ruff-format", "mypy-strict"],
)
def test_static_checks_pass(command: list[str]) -> None:
    result = subprocess.run([sys.executable, "-m", *command], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_simulator_imports_nothing_of_the_client() -> None:
    """sim/ may use ims_nb.signing and itself only, so that server and client judge independently."""
    for module in (ROOT / "ims_nb" / "sim").glob("*.py"):
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ims_nb"):
                targets = [
                    f"{node.module}.{alias.name}" if node.module == "ims_nb" else node.module for alias in node.names
                ]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names if alias.name.startswith("ims_nb")]
            else:
                continue
            for target in targets:
                assert target == "ims_nb.signing" or target.startswith("ims_nb.sim"), f"{module.name}: {target}"
