"""No stored notebook output or metadata holds a secret: a simulator key or password, a signature or a token."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from ims_nb.sim import Simulator
from tests.secret_scan import leaks, scan

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))


@pytest.fixture(scope="module")
def known_secrets() -> dict[str, str]:
    """The seed-0 simulator's secrets by name: every user's SK and password.

    They come from the seed alone (``inventory.make_accounts``), not the region, so every seed-0
    simulator a notebook starts (``ims_nb.connect()`` with no credentials) has these.
    """
    with Simulator(seed=0, images=10, manual_clock=True) as sim:
        users = httpx.get(f"{sim.endpoint}/_sim/credentials").raise_for_status().json()["users"]
        operator_sk = sim.info.sk
    found = {f"{user['name']} SK": user["sk"] for user in users}
    found |= {f"{user['name']} password": user["password"] for user in users}
    assert operator_sk in found.values() and {"ims-operator password", "ims-auditor password"} <= set(found)
    return found


# --- the notebooks ------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.name for path in NOTEBOOKS])
def test_stored_outputs_hold_no_secret(path: Path, known_secrets: dict[str, str]) -> None:
    notebook = json.loads(path.read_text(encoding="utf-8"))
    assert scan(notebook, known_secrets) == []


# --- the scanner catches what it should, and only that ------------------------------------------------


def a_notebook(outputs: list[dict[str, Any]] | None = None, metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    """A one-code-cell nbformat 4 notebook with these outputs and notebook metadata."""
    cell = {"cell_type": "code", "execution_count": 1, "metadata": {}, "source": ["x"], "outputs": outputs or []}
    return {"nbformat": 4, "nbformat_minor": 5, "metadata": metadata or {}, "cells": [cell]}


def planted(tmp_path: Path, notebook: dict[str, Any]) -> dict[str, Any]:
    """The notebook written to disk and read back, as the parametrized test reads a stored one."""
    path = tmp_path / "planted.ipynb"
    path.write_text(json.dumps(notebook, indent=1), encoding="utf-8")
    return dict(json.loads(path.read_text(encoding="utf-8")))


def test_an_sk_in_a_stream_output_is_found(tmp_path: Path, known_secrets: dict[str, str]) -> None:
    sk = known_secrets["ims-operator SK"]
    stream = {"output_type": "stream", "name": "stdout", "text": ["connected\n", f"sk = {sk}\n"]}
    assert scan(planted(tmp_path, a_notebook([stream])), known_secrets) == ["cell 0 output 0 (stream): ims-operator SK"]


def test_an_sk_in_display_data_html_is_found(tmp_path: Path, known_secrets: dict[str, str]) -> None:
    sk = known_secrets["ims-operator SK"]
    display = {
        "output_type": "display_data",
        "metadata": {},
        "data": {"text/plain": ["<table>"], "text/html": ["<table>\n", f"<tr><td>{sk}</td></tr>\n", "</table>"]},
    }
    found = scan(planted(tmp_path, a_notebook([display])), known_secrets)
    assert found == ["cell 0 output 0 (display_data): ims-operator SK"]


def test_an_sk_in_widget_state_metadata_is_found(tmp_path: Path, known_secrets: dict[str, str]) -> None:
    sk = known_secrets["ims-operator SK"]
    state = {"model_name": "TextModel", "state": {"value": sk, "description": "SK"}}
    widgets = {"application/vnd.jupyter.widget-state+json": {"state": {"0f3a": state}, "version_major": 2}}
    found = scan(planted(tmp_path, a_notebook(metadata={"widgets": widgets})), known_secrets)
    assert found == ["notebook metadata: ims-operator SK"]


def test_passwords_and_tracebacks_are_scanned(known_secrets: dict[str, str]) -> None:
    error = {
        "output_type": "error",
        "ename": "AuthError",
        "evalue": "x",
        "traceback": [known_secrets["ims-auditor password"]],
    }
    assert scan(a_notebook([error]), known_secrets) == ["cell 0 output 0 (error): ims-auditor password"]


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("Authorization: SDK-HMAC-SHA256 Access=AK, SignedHeaders=host, Signature=***", "AK/SK signature"),
        ("Headers({'authorization': 'OBS AKEXAMPLE:c2lnbmF0dXJl'})", "Authorization header"),
        ('{"Authorization": "Bearer abc"}', "Authorization header"),
        ('[("authorization", b"abc")]', "Authorization header"),
        ("X-Auth-Token: gAAAAAB-token", "X-Auth-Token header"),
        ("{'x-subject-token': 'abc'}", "X-Subject-Token header"),
        (
            "token MIIDtAYJKoZIhvcNAQcCoIIDpTCCA6ECAQExDTALBglghkgBZQMEAgEwggGlBgkqhkiG9w0BBwGgggGWBIIBknsidG9rZW4i",
            "IAM token",
        ),  # fmt: skip
    ],
)
def test_secret_shapes_are_found(text: str, name: str) -> None:
    assert name in set(leaks(text, {}))


@pytest.mark.parametrize(
    "text",
    [
        "X-Auth-Token: ***",
        "{'Authorization': '***', 'X-Subject-Token': '***'}",
        "signed headers: host, Authorization, X-Sdk-Date",
        "MIIsmall",
    ],
)
def test_masked_and_harmless_text_is_not_flagged(text: str) -> None:
    assert list(leaks(text, {})) == []


def test_pictures_are_not_read_as_text_but_their_captions_are(known_secrets: dict[str, str]) -> None:
    token_like = "MII" + "A" * 60
    output = {"output_type": "display_data", "data": {"image/png": token_like, "text/plain": "<Figure>"}}
    assert scan({"cells": [{"cell_type": "code", "outputs": [output]}]}, known_secrets) == []
    output["data"]["text/plain"] = token_like
    assert scan({"cells": [{"cell_type": "code", "outputs": [output]}]}, known_secrets) == [
        "cell 0 output 0 (display_data): IAM token"
    ]
