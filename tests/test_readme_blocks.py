"""Every Python and shell block of the README runs as written, against an embedded simulator.

How the blocks are found and run:

- A fenced block tagged ``python`` is Python; one tagged ``sh``, ``bash`` or nothing is shell. ``text``, ``json``
  and ``mermaid`` blocks are not code (synopses, output, diagrams); any other tag fails the test.
- A block whose first line is ``# not run: <why>`` is not run (it starts a server, runs for minutes, ...).
- A shell block whose first line is ``# exit 3: <why>`` may end each command with 3 (some image refused) or 0.
- Python blocks run in order in one namespace for the whole README (the Preflight block uses the client and
  images of the Connecting block), in one subprocess; a traceback names the README's own line numbers.
- Shell blocks run in order, each in its own ``bash -e``, all in one temporary directory (``plan.csv`` and the
  ledger a block writes are there for the next), with this venv first on ``PATH`` so ``ims-nb`` resolves.
- The environment is clean: no ``HUAWEICLOUD_SDK_*``, no ``IMS_NB_*`` (so ``connect()`` and the CLI fall back
  to an embedded simulator), ``HOME`` and ``TMPDIR`` in the temporary directory.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
README = ROOT / "README.md"
PYTHON_TAGS = frozenset({"python"})
SHELL_TAGS = frozenset({"sh", "bash", ""})
NOT_CODE_TAGS = frozenset({"text", "json", "mermaid"})
NOT_RUN = "# not run:"
EXIT_3 = "# exit 3:"
FENCE = re.compile(r"^```(\S*)\s*$")
TIMEOUT = 50.0


@dataclass(frozen=True)
class Block:
    """A fenced block of the README: its tag, the line its code starts on, its code."""

    tag: str
    line: int
    code: str

    @property
    def marker(self) -> str:
        first = self.code.lstrip("\n").splitlines()[0] if self.code.strip() else ""
        return first if first.startswith((NOT_RUN, EXIT_3)) else ""


def readme_blocks(text: str) -> list[Block]:
    """The fenced blocks of a Markdown text, in order."""
    blocks: list[Block] = []
    opened: tuple[str, int] | None = None
    lines: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        match = FENCE.match(line)
        if opened is None and match:
            opened, lines = (match.group(1), number + 1), []
        elif opened is not None and line.rstrip() == "```":
            blocks.append(Block(opened[0], opened[1], "\n".join(lines) + "\n"))
            opened = None
        elif opened is not None:
            lines.append(line)
    assert opened is None, f"README.md:{opened[1] - 1}: a fence is never closed"
    return blocks


BLOCKS = readme_blocks(README.read_text())


def _runnable(tags: frozenset[str]) -> list[Block]:
    return [b for b in BLOCKS if b.tag in tags and not b.marker.startswith(NOT_RUN)]


def clean_env(home: Path) -> dict[str, str]:
    """No credentials and no simulator line: only the venv, the tree under test and a temporary home."""
    return {
        "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
        "PYTHONPATH": str(ROOT),
        "HOME": str(home),
        "TMPDIR": str(home),
        "LANG": "C.UTF-8",
    }


def python_script(blocks: list[Block]) -> str:
    """One script running the blocks in order in one namespace, each compiled at its README line numbers."""
    padded = ["\n" * (b.line - 1) + b.code for b in blocks]
    calls = [f"exec(compile({code!r}, {str(README)!r}, 'exec'), namespace)" for code in padded]
    return "namespace = {'__name__': '__main__'}\n" + "\n".join(calls) + "\n"


def shell_script(block: Block) -> str:
    """The block for ``bash -e``; with an ``# exit 3:`` marker each command may end with 3 as well as 0."""
    if not block.marker.startswith(EXIT_3):
        return block.code
    commands = re.sub(r"\\\n", " ", block.code).splitlines()
    guarded = [
        f"{{ {c}\n}} || {{ s=$?; [ $s -eq 3 ] || exit $s; }}"
        for c in commands
        if c.strip() and not c.lstrip().startswith("#")
    ]
    return "\n".join(guarded) + "\n"


def test_every_block_is_tagged_as_code_or_not() -> None:
    known = PYTHON_TAGS | SHELL_TAGS | NOT_CODE_TAGS
    strays = [f"README.md:{b.line - 1}: ```{b.tag}" for b in BLOCKS if b.tag not in known]
    assert not strays, f"blocks with an unknown tag (use python, sh, text, json or mermaid): {strays}"


def test_markers_give_a_reason() -> None:
    bare = [f"README.md:{b.line}" for b in BLOCKS if b.marker and not b.marker.split(":", 1)[1].strip()]
    assert not bare, f"a '# not run:' or '# exit 3:' marker without its reason: {bare}"
    misplaced = [f"README.md:{b.line}" for b in _runnable(PYTHON_TAGS) if b.marker.startswith(EXIT_3)]
    assert not misplaced, f"'# exit 3:' is for shell blocks: {misplaced}"


def test_the_python_blocks_run(tmp_path: Path) -> None:
    blocks = _runnable(PYTHON_TAGS)
    assert blocks, "the README has no Python block to run"
    done = subprocess.run(
        [sys.executable, "-c", python_script(blocks)],
        cwd=tmp_path, env=clean_env(tmp_path), capture_output=True, text=True, timeout=TIMEOUT, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]


@pytest.fixture(scope="module")
def shell_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One directory for all shell blocks, in order: what one writes (a plan, a ledger) the next reads."""
    return tmp_path_factory.mktemp("readme-shell")


@pytest.mark.parametrize("block", _runnable(SHELL_TAGS), ids=lambda b: f"line{b.line}")
def test_the_shell_blocks_run(block: Block, shell_dir: Path) -> None:
    done = subprocess.run(
        ["bash", "-e", "-c", shell_script(block)],
        cwd=shell_dir, env=clean_env(shell_dir), capture_output=True, text=True, timeout=TIMEOUT, check=False,
    )  # fmt: skip
    assert done.returncode == 0, f"README.md:{block.line}: exit {done.returncode}\n{done.stderr[-4000:]}"
