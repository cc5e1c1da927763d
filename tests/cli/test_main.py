"""The ``ims-nb`` command line: the ``sim`` verb's contract and its refusals."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import httpx
import pytest

from ims_nb.cli._main import build_parser, main
from ims_nb.sim import attach
from ims_nb.sim.session import ENV_VAR


def test_sim_prints_exactly_one_json_line_and_stops_on_sigterm() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "ims_nb", "sim", "--port", "0", "--seed", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = json.loads(process.stdout.readline())
        assert list(line) == ["endpoint", "region", "project_id", "ak", "sk"]
        assert line["endpoint"].startswith("http://127.0.0.1:") and line["region"] == "cn-north-4"
        assert httpx.get(line["endpoint"] + "/_sim/health").json() == {"status": "ok"}
    finally:
        process.terminate()
        out, _ = process.communicate(timeout=15)
    assert out == ""  # nothing after the one line
    assert process.returncode in (0, -15)


@pytest.mark.parametrize(
    "argv",
    [
        ["sim", "--port", "-1"],
        ["sim", "--images", "many"],
        ["sim", "--time-scale", "0"],
        ["sim", "--time-scale", "5", "--manual-clock"],
        ["fly"],
    ],
)
def test_bad_arguments_exit_2_with_a_message(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(argv)
    assert exit_info.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_a_non_loopback_host_is_refused_without_allow_remote(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "--host", "0.0.0.0"]) == 2
    assert "--allow-remote" in capsys.readouterr().err


def test_attach_uses_the_simulator_make_lab_started(sim: object, monkeypatch: pytest.MonkeyPatch) -> None:
    info = sim.info  # type: ignore[attr-defined]
    monkeypatch.setenv(ENV_VAR, json.dumps(info.as_json_dict()))
    handle = attach()
    assert handle.endpoint == info.endpoint and "external" in repr(handle)
    assert handle.summary()["images"] == 200
    assert info.sk not in repr(handle) and info.sk not in repr(handle.info)


def test_attach_starts_an_embedded_simulator_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    handle = attach(seed=2, images=50, manual_clock=True)
    try:
        assert "embedded" in repr(handle)
        assert handle.advance(60).endswith("00:01:00.000Z")
        assert handle.summary()["clock"] == "manual"
    finally:
        handle.close()
    assert os.environ.get(ENV_VAR) is None
