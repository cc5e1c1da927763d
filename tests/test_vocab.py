"""The shared words: ``Target`` parsed and formatted in one place, and no ``bucket:key`` split anywhere else."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from ims_nb.errors import ConfigError
from ims_nb.vocab import Target, split_bucket_url

PACKAGE = Path(__file__).parent.parent / "ims_nb"
#: Functions that split strings on ":" which are not bucket urls (by name, wherever they move): ``host:pid``
#: owners, an endpoint's port, ``op:time`` listing filters.
NOT_BUCKET_URLS = {"owner_alive", "simulator_path", "_moment"}


@pytest.mark.parametrize(
    ("text", "bucket", "key"),
    [
        ("b-1:exports/web.qcow2", "b-1", "exports/web.qcow2"),
        ("b:a:b.vhd", "b", "a:b.vhd"),  # the first ':' separates; the key rules refuse the rest
        (":x.qcow2", "", "x.qcow2"),
        ("b-1:", "b-1", ""),
    ],
)
def test_a_target_is_parsed_once_and_formats_back(text: str, bucket: str, key: str) -> None:
    target = Target.parse(text)
    assert (target.bucket, target.key) == (bucket, key)
    assert str(target) == target.bucket_url == text
    assert Target.parse(target) is target
    assert split_bucket_url(text) == (bucket, key)


@pytest.mark.parametrize("text", ["bucket-only", "", None, 3, b"b:k"])
def test_a_string_without_a_separator_is_no_target(text: object) -> None:
    with pytest.raises(ConfigError, match="use BUCKET:KEY"):
        Target.parse(text)


def test_split_without_a_separator_gives_no_key() -> None:
    assert split_bucket_url("bucket-only") == ("bucket-only", None)


def test_targets_are_values() -> None:
    assert Target("b", "k") == Target.parse("b:k") and len({Target("b", "k"), Target.parse("b:k")}) == 1
    with pytest.raises(AttributeError):
        Target("b", "k").bucket = "c"  # type: ignore[misc]


def _is_colon(node: ast.expr) -> bool:
    """``":"``, or the name of the separator constant."""
    if isinstance(node, ast.Constant):
        return node.value == ":"
    return (node.id if isinstance(node, ast.Name) else getattr(node, "attr", "")) == "TARGET_SEPARATOR"


def _colon_splits(path: Path) -> list[tuple[str, str, int]]:
    """(module, enclosing function, line) of every ``.split/.partition/...(":")`` call in a module."""
    found: list[tuple[str, str, int]] = []

    def visit(node: ast.AST, function: str) -> None:
        for child in ast.iter_child_nodes(node):
            name = child.name if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef) else function
            if (
                isinstance(child, ast.Call) and isinstance(child.func, ast.Attribute)
                and child.func.attr in ("split", "rsplit", "partition", "rpartition")
                and child.args and _is_colon(child.args[0])
            ):  # fmt: skip
                found.append((path.relative_to(PACKAGE).as_posix(), function, child.lineno))
            visit(child, name)

    visit(ast.parse(path.read_text()), "<module>")
    return found


def test_a_bucket_url_is_split_in_exactly_one_function() -> None:
    """After the edge nothing splits a ``bucket:key`` string: ``split_bucket_url`` does, for everyone.

    The simulator (``ims_nb/sim``) is the server: it reads the POST body on its own, by design.
    """
    splits = [s for p in sorted(PACKAGE.rglob("*.py")) if "sim" not in p.relative_to(PACKAGE).parts[:1]
              for s in _colon_splits(p)]  # fmt: skip
    others = [s for s in splits if s[1] not in NOT_BUCKET_URLS]
    assert [(module, function) for module, function, _ in others] == [("vocab.py", "split_bucket_url")], others


def test_the_vocabulary_is_pandas_free() -> None:
    """``ims_nb.vocab`` imports the standard library and ``ims_nb.errors`` only (the CLI's start reads it)."""
    tree = ast.parse((PACKAGE / "vocab.py").read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported <= {"__future__", "dataclasses", "enum", "typing", "ims_nb.errors"}, imported


@pytest.mark.parametrize(
    ("written", "meant"),
    [("obs://bucket/x.qcow2", "bucket:x.qcow2"), ("bucket/dir/x.vhd", "bucket:dir/x.vhd"), ("bucket", "BUCKET:KEY")],
)
def test_a_target_written_as_a_url_or_path_is_answered_use_bucket_key(written: str, meant: str) -> None:
    with pytest.raises(ConfigError) as raised:
        Target.parse(written)
    assert "use BUCKET:KEY" in str(raised.value) and meant in str(raised.value)
