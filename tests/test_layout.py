"""The package's shape (issue 12): subpackages that name the architecture, modules that stay small, words said once."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "ims_nb"
#: What stays at the top of the package; everything else lives in a subpackage named for its job.
TOP_MODULES = {"__init__", "__main__", "_extras", "vocab", "errors", "signing", "frames", "rules", "preflight",
               "selection", "targets", "snapshots", "coverage", "coverage_status", "coverage_objects", "charts", "demo",
               "chart_parts", "frame_columns", "rule_parts", "signing_obs", "preflight_plan"}  # fmt: skip
SUBPACKAGES = {"app", "cli", "client", "estate", "exports", "sim", "widgets"}
MAX_LINES = 400


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def test_the_top_level_holds_the_shared_modules_and_the_subpackages_only() -> None:
    top = {p.stem for p in PACKAGE.glob("*.py")}
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert top == TOP_MODULES
    assert folders == SUBPACKAGES


def test_tests_mirror_the_package() -> None:
    for name in ("cli", "client", "estate", "exports", "sim", "widgets", "browser"):
        assert (ROOT / "tests" / name / "__init__.py").exists(), name


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_is_over_400_lines(path: Path) -> None:
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(ROOT)} has {lines} lines; split it by the job each part does"


#: Words of ``ims_nb/vocab.py`` written out again anywhere else in the client side of the package (the simulator
#: keeps its own: it must not share the client's view of the service).
STRAY_COPIES = {
    "the file format list": re.compile(r"""["']qcow2["'],\s*["']vhd["'],\s*["']zvhd["'],\s*["']vmdk["']"""),
    "the stall limit": re.compile(r"\b1800(\.0)?\b"),
    "the default key template": re.compile(r"""["']\{name\}-\{id8\}\.\{ext\}["']"""),
    "the fast-export format": re.compile(r"""(?<![\w(])["']zvhd2["']"""),
}


@pytest.mark.parametrize("word", sorted(STRAY_COPIES))
def test_the_vocabulary_is_written_once(word: str) -> None:
    pattern = STRAY_COPIES[word]
    found = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in _modules()
        if path.name != "vocab.py" and "sim" not in path.relative_to(PACKAGE).parts
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line.split("#")[0])
    ]
    assert not found, f"{word} is copied outside ims_nb/vocab.py: {', '.join(found)}"
