"""The secret scanner the tests share: planted values and secret-bearing shapes in text, files and notebooks."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any


def _header_value(name: str) -> re.Pattern[str]:
    """``Name: value``, ``"Name": "value"``, ``name=value`` or ``("name", b"value")``, unless the value is masked
    (``***``): an opening quote (``b'``) is taken whole when there is one, so ``b'***'`` is not read as ``b...``."""
    separator = r"""(?:["']?[ \t]*[:=]|["'][ \t]*,)[ \t]*"""
    opening = r"""(?:b?["'](?!\*)|(?!b?["']))"""
    return re.compile(rf"""\b{name}{separator}{opening}[^\s"',*]""", re.IGNORECASE)


#: What gives a secret away whatever its value, by name.
LEAK_PATTERNS = {
    "AK/SK signature": re.compile(r"SDK-HMAC-SHA256\s+Access="),
    "signature value": re.compile(r"Signature=[0-9a-f]{16,}"),
    "OBS signature": re.compile(r"\b(?:OBS|AWS) [A-Za-z0-9]{8,}:[A-Za-z0-9+/]{20,}={0,2}"),
    "Authorization header": _header_value("Authorization"),
    "X-Auth-Token header": _header_value("X-Auth-Token"),
    "X-Subject-Token header": _header_value("X-Subject-Token"),
    "security token header": _header_value(r"X-(?:obs-|amz-)?Security-Token"),
    "IAM token": re.compile(r"MII[A-Za-z0-9+/=_-]{40,}"),
}


def leaks(text: str, secrets: Mapping[str, str]) -> Iterator[str]:
    """The names (never the values) of the secrets and secret-bearing shapes in ``text``."""
    yield from (name for name, secret in secrets.items() if secret and secret in text)
    yield from (name for name, pattern in LEAK_PATTERNS.items() if pattern.search(text))


def scan_text(where: str, text: str, secrets: Mapping[str, str]) -> list[str]:
    """``where: what`` for each secret or shape found in ``text``."""
    return [f"{where}: {name}" for name in leaks(text, secrets)]


def scan_files(paths: Iterable[Path], secrets: Mapping[str, str]) -> list[str]:
    """``file: what`` for each secret or shape in the bytes of ``paths`` (SQLite pages, WAL frames, logs ...).

    Bytes are read as Latin-1, one character per byte, so an ASCII secret stored anywhere (UTF-8 text in a
    page, a half-written WAL frame) is found as it is.
    """
    found = []
    for path in paths:
        found += scan_text(path.name, path.read_bytes().decode("latin-1"), secrets)
    return found


# --- notebooks ----------------------------------------------------------------------------------------


def _strings(value: Any) -> Iterator[str]:
    """Every string in a JSON value (keys too); a list of strings is one text, as nbformat splits them."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, list) and value and all(isinstance(item, str) for item in value):
        yield "".join(value)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _strings(item)


#: Base64 pictures: no text lives in them, and their random letters can look like a token (``MII...``).
PICTURES = ("image/png", "image/jpeg", "image/gif")


def _without_pictures(output: dict[str, Any]) -> dict[str, Any]:
    data = output.get("data")
    if not isinstance(data, dict):
        return output
    return {**output, "data": {mime: value for mime, value in data.items() if mime not in PICTURES}}


def stored_texts(notebook: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, text) for the notebook's metadata, each cell's metadata and every output of every code cell."""
    for text in _strings(notebook.get("metadata", {})):
        yield "notebook metadata", text
    for index, cell in enumerate(notebook.get("cells", [])):
        for text in _strings(cell.get("metadata", {})):
            yield f"cell {index} metadata", text
        for number, output in enumerate(cell.get("outputs", [])):
            for text in _strings(_without_pictures(output)):
                yield f"cell {index} output {number} ({output.get('output_type')})", text


def scan(notebook: dict[str, Any], secrets: Mapping[str, str]) -> list[str]:
    """``where: what`` for each secret found in the stored outputs and metadata of ``notebook``."""
    return [found for where, text in stored_texts(notebook) for found in scan_text(where, text, secrets)]
