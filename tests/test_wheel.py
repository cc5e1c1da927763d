"""The wheel works from a plain ``pip install`` (no extras) in a fresh venv, and ships the app, never the tests.

One test: build the wheel from this tree, install it without extras into a venv that does not see this
environment's packages (a missing dependency would show), and run what the README documents first:
``ims-nb --help``, ``ims-nb sim`` (its JSON line), ``ims-nb images --sim LINE``, and a ``python -c`` that
connects and lists into a DataFrame. pip's cache keeps it well under 90 s after the first run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: What the build reads besides ``ims_nb/``.
SOURCES = ("pyproject.toml", "README.md")
LISTING = """
import json, sys
import pandas as pd
import ims_nb
info = json.loads(sys.argv[1])
with ims_nb.connect(ak=info["ak"], sk=info["sk"], project_id=info["project_id"], endpoint=info["endpoint"]) as c:
    frame = c.images()
assert isinstance(frame, pd.DataFrame) and len(frame) == 200, frame
print(len(frame), "images")
"""


def run(command: list[str], env: dict[str, str], timeout: float = 240) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout, check=False)
    assert done.returncode == 0, f"{command[:3]} -> {done.returncode}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done


def build_wheel(folder: Path, env: dict[str, str]) -> Path:
    """The wheel of a copy of what the build reads (no stale ``build/`` from an earlier build, nothing left here)."""
    source = folder / "source"
    source.mkdir(parents=True)
    for name in SOURCES:
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "ims_nb", source / "ims_nb", ignore=shutil.ignore_patterns("__pycache__"))
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(folder), str(source)], env)
    (wheel,) = folder.glob("ims_nb-*.whl")
    return wheel


def check_contents(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert any(n.startswith("ims_nb/app/") and n.endswith(".ipynb") for n in names), "the app notebook is missing"
    template = "ims_nb/app/jupyter/voila/templates/ims-nb/"
    assert {f"{template}conf.json", f"{template}index.html.j2"} <= set(names), "the app's Voilà template is missing"
    revisions = {p.relative_to(ROOT).as_posix() for p in (ROOT / "ims_nb/exports/migrations/versions").glob("*.py")}
    assert revisions and revisions <= set(names), "the ledger's Alembic revisions are missing"
    assert not [n for n in names if n.startswith(("tests/", "benchmarks/", "tools/", "data/"))], names
    (metadata,) = [n for n in names if n.endswith(".dist-info/METADATA")]
    assert "License-Expression: Apache-2.0" in zipfile.ZipFile(wheel).read(metadata).decode()  # SPDX: no deprecation


def start_simulator(bin_dir: Path, env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    child = subprocess.Popen([str(bin_dir / "ims-nb"), "sim", "--port", "0"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env)  # fmt: skip
    assert child.stdout is not None
    line = child.stdout.readline().strip()
    assert line, child.communicate(timeout=30)[1] if child.poll() is not None else "no line"
    assert {"endpoint", "ak", "sk", "project_id"} <= set(json.loads(line))
    return child, line


@pytest.mark.timeout(300)
def test_a_plain_pip_install_of_the_wheel_runs_the_documented_entry_points(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HUAWEICLOUD_SDK_", "PYTHON", "VIRTUAL_ENV"))}
    env.pop("IMS_NB_SIM", None)
    env["HOME"] = str(tmp_path)  # no credentials file; pip's cache is found through XDG_CACHE_HOME or ~/.cache
    env.setdefault("XDG_CACHE_HOME", str(Path.home() / ".cache"))
    wheel = build_wheel(tmp_path / "dist", env)
    check_contents(wheel)

    # No pip in the venv (ensurepip was half of this test's time): this pip installs into it, from the wheel alone.
    venv.EnvBuilder(with_pip=False, system_site_packages=False).create(tmp_path / "venv")
    bin_dir = tmp_path / "venv" / "bin"
    install = ["install", "-q", "--disable-pip-version-check", str(wheel)]
    run([sys.executable, "-m", "pip", "--python", str(bin_dir / "python"), *install], env)

    assert "images" in run([str(bin_dir / "ims-nb"), "--help"], env, timeout=60).stdout
    child, line = start_simulator(bin_dir, env)
    try:
        listed = run([str(bin_dir / "ims-nb"), "images", "--sim", line, "--max-items", "5", "--format", "json"], env)
        assert len(json.loads(listed.stdout)) == 5
        assert run([str(bin_dir / "python"), "-c", LISTING, line], env, timeout=120).stdout.strip() == "200 images"
    finally:
        child.terminate()
        child.communicate(timeout=30)
