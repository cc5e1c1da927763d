"""What the CLI tests import by name: a client of an ``ims-nb sim`` line, and a verb run in-process or as a child."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import ims_nb
from ims_nb.cli._main import main


def connect_line(info: dict[str, str]) -> ims_nb.ImsClient:
    """A client of the simulator whose JSON line (parsed) is ``info``, as its operator."""
    return ims_nb.connect(
        info["region"], ak=info["ak"], sk=info["sk"], project_id=info["project_id"], endpoint=info["endpoint"]
    )


def run_main(argv: list[str]) -> int:
    """``main`` in-process; argparse's usage errors come back as their exit code."""
    try:
        return main(argv)
    except SystemExit as exit_info:
        return int(exit_info.code or 0)


def run_cli(
    argv: list[str], env: dict[str, str], *, stdin: str | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m ims_nb ARGV`` in a child process with ``env``; its output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "ims_nb", *argv],
        env=env,
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )
