"""``ims-nb lab``'s setup: JupyterLab's settings overrides (merged, never lost), the environment it runs in, and the
simulator it starts (with ``app``)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest

from ims_nb.cli._children import lab_environment, sim_command, start_simulator, stopped_together
from ims_nb.cli._main import build_parser
from ims_nb.cli.lab import LAB_OVERRIDES, write_lab_settings
from ims_nb.exports.ledger import ENV_SIM_LEDGER

OVERRIDES = Path("share", "jupyter", "lab", "settings", "overrides.json")
NOTIFICATION = "@jupyterlab/apputils-extension:notification"
TRACKER = "@jupyterlab/notebook-extension:tracker"
LINE = {
    "endpoint": "http://127.0.0.1:45678",
    "region": "ap-southeast-1",
    "project_id": "0123456789abcdef0123456789abcdef",
    "ak": "SIMAK",
    "sk": "sim-secret",
}


def written(path: Path) -> dict[str, object]:
    return dict(json.loads(path.read_text()))


def test_write_lab_settings_creates_the_overrides_file(tmp_path: Path) -> None:
    path = write_lab_settings(tmp_path)
    assert path == tmp_path / OVERRIDES
    assert written(path) == LAB_OVERRIDES
    assert path.read_text().endswith("}\n")


def test_write_lab_settings_merges_and_keeps_other_keys(tmp_path: Path) -> None:
    path = tmp_path / OVERRIDES
    path.parent.mkdir(parents=True)
    mine = {
        "@jupyterlab/apputils-extension:themes": {"theme": "JupyterLab Dark"},
        NOTIFICATION: {"fetchNews": "true", "doNotDisturbMode": True},
        TRACKER: {"autoStartDefaultKernel": False, "kernelShutdown": True},
    }
    path.write_text(json.dumps(mine))
    assert write_lab_settings(tmp_path) == path
    assert written(path) == {
        "@jupyterlab/apputils-extension:themes": {"theme": "JupyterLab Dark"},
        NOTIFICATION: {"fetchNews": "false", "checkForUpdates": False, "doNotDisturbMode": True},
        TRACKER: {"autoStartDefaultKernel": True, "kernelShutdown": True},
    }
    first = path.read_text()
    write_lab_settings(tmp_path)
    assert path.read_text() == first  # a second run changes nothing


@pytest.mark.parametrize("content", ["{not json", "", "[1, 2]", '"a string"', "null"])
def test_write_lab_settings_survives_a_corrupt_file(tmp_path: Path, content: str) -> None:
    path = tmp_path / OVERRIDES
    path.parent.mkdir(parents=True)
    path.write_text(content)
    assert written(write_lab_settings(tmp_path)) == LAB_OVERRIDES


@pytest.mark.parametrize("entry", [None, "off", [1]])
def test_write_lab_settings_survives_a_plugin_entry_that_is_not_an_object(tmp_path: Path, entry: object) -> None:
    path = tmp_path / OVERRIDES
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({TRACKER: entry, "other": {"kept": 1}}))
    assert written(write_lab_settings(tmp_path)) == {**LAB_OVERRIDES, "other": {"kept": 1}}


def test_lab_environment_points_jupyterlab_at_the_simulator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMS_NB_UNRELATED", "kept")
    state = tmp_path / "world.sqlite"
    before = dict(os.environ)
    env = lab_environment(LINE, state)
    assert dict(os.environ) == before  # a new mapping for the child; this process's environment is untouched
    assert json.loads(env["IMS_NB_SIM"]) == LINE
    assert env["HUAWEICLOUD_SDK_REGION"] == "ap-southeast-1"
    assert env[ENV_SIM_LEDGER] == f"{state}.ledger.sqlite"  # beside the state: both survive a restart
    assert env["IMS_NB_UNRELATED"] == "kept" and env["PATH"] == os.environ["PATH"]


def test_lab_environment_without_state_puts_the_ledger_in_a_fresh_temporary_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    first = Path(lab_environment(LINE, None)[ENV_SIM_LEDGER])
    second = Path(lab_environment(LINE, None)[ENV_SIM_LEDGER])
    assert first.name == second.name == "ledger.sqlite" and first.parent != second.parent
    for ledger in (first, second):
        assert ledger.parent.parent == tmp_path and ledger.parent.name.startswith("ims-nb-lab-")
        assert ledger.parent.is_dir() and list(ledger.parent.iterdir()) == []


@pytest.mark.parametrize("verb", ["lab", "app"])
def test_allow_remote_reaches_the_child_simulator(verb: str) -> None:
    remote = build_parser().parse_args([verb, "--host", "0.0.0.0", "--allow-remote"])
    assert sim_command(remote)[-1] == "--allow-remote"
    assert build_parser().parse_args(sim_command(remote)[3:]).allow_remote
    local = build_parser().parse_args([verb])
    assert "--allow-remote" not in sim_command(local)


@pytest.mark.parametrize("verb", ["lab", "app"])
def test_the_child_simulator_binds_a_remote_host_only_with_allow_remote(
    verb: str, capfd: pytest.CaptureFixture[str]
) -> None:
    """``check_host`` runs in the child: without ``--allow-remote`` it refuses in one line, with it it serves."""
    with stopped_together() as children:
        line = start_simulator(build_parser().parse_args([verb, "--host", "0.0.0.0", "--images", "0"]), children)
    assert line is None
    err = capfd.readouterr().err
    assert "refusing to bind 0.0.0.0" in err and "--allow-remote" in err
    assert err.rstrip().endswith(f"ims-nb {verb}: the simulator did not start")
    args = build_parser().parse_args([verb, "--host", "0.0.0.0", "--allow-remote", "--images", "0"])
    with stopped_together() as children:
        line = start_simulator(args, children)
        assert line is not None and set(line) == set(LINE)
        [child] = children
    assert child.returncode is not None  # stopped on leaving
