"""``ims-nb lab``'s setup: the working copy it serves, JupyterLab's settings overrides (merged, never lost), the
environment it runs in, the simulator it starts (with ``app``), and what it prints."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from ims_nb.cli import lab
from ims_nb.cli._children import lab_environment, sim_command, start_simulator, stopped_together
from ims_nb.cli._main import build_parser, main
from ims_nb.cli.lab import (
    LAB_OVERRIDES,
    SCRUBBED,
    export_line,
    lab_command,
    prepare_lab_copy,
    scrub_credentials,
    simulator_file,
    simulator_file_while_running,
    simulator_line,
    write_lab_settings,
)
from ims_nb.exports import upkeep
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


ROOT = Path(__file__).resolve().parents[2]


def git(project: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(project), *args], check=True, capture_output=True, text=True).stdout


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    """A clone-like project: the committed notebooks, data/ and .gitignore, all tracked."""
    folder = tmp_path / "project"
    for name in git(ROOT, "ls-files", "notebooks", "data", ".gitignore").splitlines():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, folder / name)
    git(folder, "init", "-q")
    git(folder, "add", "-A")
    git(folder, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "clone")
    return folder


def test_the_lab_serves_a_git_ignored_copy_that_finds_data_as_the_committed_notebooks_do(project: Path) -> None:
    copy = prepare_lab_copy(project)
    assert copy == project / ".lab" / "notebooks"
    assert sorted(p.name for p in copy.iterdir()) == sorted(p.name for p in (project / "notebooks").iterdir())
    assert (copy / ".." / "data" / "sample").resolve() == (project / "data" / "sample").resolve()
    notebook = copy / "02_export.ipynb"
    notebook.write_text(notebook.read_text().replace('"cells": [', '"cells": [{"cell_type": "raw", "metadata": {}, '
                                                     '"source": "mine"}, ', 1))  # fmt: skip
    (copy / ".." / "data" / "snapshots" / "inventory.parquet").write_bytes(b"what a notebook writes")
    assert git(project, "status", "--porcelain") == ""  # tracked files untouched, the copy ignored
    mine = notebook.read_text()
    assert prepare_lab_copy(project) == copy and notebook.read_text() == mine  # the user's work survives
    (copy / "01_inventory.ipynb").unlink()
    prepare_lab_copy(project)
    assert (copy / "01_inventory.ipynb").read_bytes() == (project / "notebooks" / "01_inventory.ipynb").read_bytes()
    prepare_lab_copy(project, fresh=True)
    assert notebook.read_bytes() == (project / "notebooks" / "02_export.ipynb").read_bytes()
    assert git(project, "status", "--porcelain") == ""


def test_jupyterlab_serves_exactly_the_folder_and_port_it_is_given(tmp_path: Path) -> None:
    command = lab_command(tmp_path, 8890, "tok")
    for option in (f"--ServerApp.root_dir={tmp_path}", "--port=8890", "--ServerApp.port_retries=0",
                   "--ServerApp.token=tok", "--ServerApp.ip=127.0.0.1",
                   "--FileContentsManager.pre_save_hook=ims_nb.cli.lab.scrub_credentials"):  # fmt: skip
        assert option in command


def test_a_saved_notebook_never_holds_the_simulators_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMS_NB_SIM", json.dumps(LINE))
    output = {"output_type": "stream", "name": "stdout", "text": f"ak={LINE['ak']} sk={LINE['sk']}\n"}
    model = {"type": "notebook", "content": {"cells": [{"cell_type": "code", "outputs": [output]}]}}
    scrub_credentials(model, path="02_export.ipynb", contents_manager=None)
    saved = json.dumps(model)
    assert LINE["ak"] not in saved and LINE["sk"] not in saved and saved.count(SCRUBBED) == 2
    other = {"type": "file", "content": "sim-secret"}
    scrub_credentials(other)
    assert other["content"] == "sim-secret"


def test_the_printed_export_line_points_a_shell_at_the_simulator_without_the_sk(tmp_path: Path) -> None:
    path = simulator_file(LINE, tmp_path / "ledger.sqlite")
    assert path.stat().st_mode & 0o077 == 0  # only its owner reads the SK
    line = export_line(path)
    assert LINE["sk"] not in line
    shell = subprocess.run(["bash", "-c", f'{line}; printf %s "$IMS_NB_SIM"'], capture_output=True, text=True)
    assert json.loads(shell.stdout) == LINE


def test_the_simulator_file_is_removed_when_the_lab_stops_normally(tmp_path: Path) -> None:
    with simulator_file_while_running(LINE, tmp_path / "ledger.sqlite") as path:
        assert json.loads(path.read_text()) == LINE and path.parent == tmp_path
    assert list(tmp_path.iterdir()) == []


def test_the_simulator_file_is_removed_on_ctrl_c_and_sigterm(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt), simulator_file_while_running(LINE, tmp_path / "ledger.sqlite") as path:
        assert path.exists()
        raise KeyboardInterrupt  # what stopped_together makes of SIGTERM
    assert list(tmp_path.iterdir()) == []


def wait_for_line(log: Path, start: str, process: subprocess.Popen[str], timeout: float = 90.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [line for line in log.read_text().splitlines() if line.startswith(start)]
        if found:
            return found[0]
        assert process.poll() is None, log.read_text()[-3000:]
        time.sleep(0.2)
    raise AssertionError(f"no {start!r} line in {timeout:.0f} s:\n{log.read_text()[-3000:]}")


def test_with_its_port_taken_the_lab_prints_the_port_and_token_it_really_serves(tmp_path: Path) -> None:
    (tmp_path / "notebooks").mkdir()
    log = tmp_path / "lab.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HUAWEICLOUD_SDK_", "IMS_NB_"))}
    with socket.socket() as taken, log.open("w") as out:
        taken.bind(("127.0.0.1", 0))
        asked = taken.getsockname()[1]
        process = subprocess.Popen(
            [sys.executable, "-m", "ims_nb", "lab", "--port", "0", "--images", "0", "--lab-port", str(asked),
             "--notebooks", str(tmp_path / "notebooks"), "--state", str(tmp_path / "world.sqlite")],
            stdout=out, stderr=subprocess.STDOUT, text=True, env=env,
        )  # fmt: skip
        try:
            served = wait_for_line(log, "ims-nb lab: JupyterLab at http://127.0.0.1:", process)
            url = served.split(" at ", 1)[1].split()[0]
            port = int(url.split(":")[2].split("/")[0])
            assert port != asked and "?token=" in url
            token = url.split("?token=", 1)[1]
            assert httpx.get(f"http://127.0.0.1:{port}/api/status?token={token}", timeout=10).status_code == 200
            pointer = wait_for_line(log, "ims-nb lab: to point the CLI", process)
            export = pointer.split(": ", 2)[2]
            shell = subprocess.run(["bash", "-c", f'{export}; printf %s "$IMS_NB_SIM"'], capture_output=True,
                                   text=True)  # fmt: skip
            sim = json.loads(shell.stdout)
            assert sim["sk"] not in log.read_text()
            assert f"SIMULATOR at {sim['endpoint']} " in log.read_text()
        finally:
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=30) == 0
    sim_file = Path(export.split("$(cat ", 1)[1].split(")", 1)[0])
    assert sim_file.name == "simulator.json" and not sim_file.exists()  # its SK does not outlive the lab


# --- ims-nb lab --ledger --------------------------------------------------------------------------


class FakeLab:
    """JupyterLab's child process, already ended with 0: records its environment and the simulator's file then."""

    started: list[FakeLab] = []

    def __init__(self, command: list[str], env: dict[str, str], **options: object) -> None:
        self.command, self.env = command, env
        self.sim_files = [(path, path.stat().st_mode, path.parent.stat().st_mode)
                          for path in Path(tempfile.gettempdir()).rglob("simulator.json")]  # fmt: skip
        FakeLab.started.append(self)

    def wait(self, timeout: float | None = None) -> int:
        return 0

    def poll(self) -> int:
        return 0


def never_started(*args: object, **kwargs: object) -> None:
    raise AssertionError("nothing may start")


@pytest.fixture()
def fake_lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``run_lab`` without children: the simulator's line is ``LINE`` (its own ledger under ``tmp_path/own``),
    JupyterLab a ``FakeLab`` that "answers" at once; temporary folders go under ``tmp_path``."""
    own = tmp_path / "own" / "ledger.sqlite"
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(lab, "simulator_for_children", lambda args, children: (LINE, {ENV_SIM_LEDGER: str(own)}))
    monkeypatch.setattr(lab, "write_lab_settings", lambda prefix: prefix)  # not the shared environment's settings
    monkeypatch.setattr(lab, "first_free_port", lambda port: port)
    monkeypatch.setattr(lab, "wait_listening", lambda port, child: True)
    monkeypatch.setattr(subprocess, "Popen", FakeLab)
    FakeLab.started = []
    (tmp_path / "notebooks").mkdir()
    own.parent.mkdir()
    return tmp_path


def run_fake_lab(folder: Path, *options: str) -> FakeLab:
    assert main(["lab", "--notebooks", str(folder / "notebooks"), *options]) == 0
    [started] = FakeLab.started
    return started


def test_without_ledger_the_kernels_keep_the_simulators_own(fake_lab: Path, capsys: pytest.CaptureFixture[str]) -> None:
    started = run_fake_lab(fake_lab)
    own = fake_lab / "own" / "ledger.sqlite"
    assert started.env[ENV_SIM_LEDGER] == str(own)
    assert [path for path, _, _ in started.sim_files] == [own.parent / "simulator.json"]
    assert f"exports to the simulator are recorded in {own}\n" in capsys.readouterr().out


def test_a_ledger_file_reaches_the_kernels_as_an_absolute_path_with_the_simulator_file_beside_it(
    fake_lab: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(fake_lab)
    started = run_fake_lab(fake_lab, "--ledger", "team/ledger.sqlite")
    ledger = fake_lab / "team" / "ledger.sqlite"
    assert started.env[ENV_SIM_LEDGER] == str(ledger) and ledger.exists()  # opened once before the lab started
    [(sim_file, mode, _)] = started.sim_files
    assert sim_file == ledger.parent / "simulator.json" and mode & 0o077 == 0 and not sim_file.exists()
    assert f"exports to the simulator are recorded in {ledger}\n" in capsys.readouterr().out


def test_a_postgresql_ledger_reaches_the_kernels_and_the_simulator_file_goes_to_a_private_folder(
    fake_lab: Path, pg_database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    started = run_fake_lab(fake_lab, "--ledger", pg_database)
    assert started.env[ENV_SIM_LEDGER] == pg_database  # as the app's kernels get it: ``location_for`` reads it
    [(sim_file, mode, folder_mode)] = started.sim_files
    assert sim_file.parent.parent == fake_lab and sim_file.parent.name.startswith("ims-nb-lab-")
    assert mode & 0o077 == 0 and folder_mode & 0o077 == 0  # only its owner reads the SK, or even lists it
    assert not sim_file.parent.exists()  # removed with its folder when the lab stopped
    out = capsys.readouterr().out
    assert f"recorded in {upkeep.where(pg_database)}\n" in out and "postgresql+psycopg://postgres@" in out
    assert f"$(cat {sim_file})" in out


def test_the_startup_line_masks_a_ledger_password() -> None:
    shown = simulator_line(LINE, "postgresql://exports:hunter2@db.example.internal/ims_nb")
    assert "hunter2" not in shown and "exports:***@db.example.internal" in shown


def test_a_password_in_the_lab_ledger_is_refused_before_anything_starts(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(subprocess, "Popen", never_started)
    with pytest.raises(SystemExit) as exit_info:
        main(["lab", "--ledger", "postgresql://exports:hunter2@db.example.internal/ims_nb"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "hunter2" not in err
    assert "$PGPASSWORD" in err and "~/.pgpass" in err and "$IMS_NB_LEDGER" in err


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize(
    "ledger", ["postgresql://exports@127.0.0.1:{port}/ims_nb", "sqlite:////proc/ims-nb-none/ledger.sqlite"]
)
def test_a_ledger_that_cannot_be_opened_fails_in_one_line_before_anything_starts(
    ledger: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(subprocess, "Popen", never_started)
    assert main(["lab", "--notebooks", str(tmp_path), "--ledger", ledger.format(port=free_port())]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ims-nb lab: cannot open the ledger ") and err.count("\n") == 1


def test_a_ledger_on_another_engine_is_refused_while_parsing(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["lab", "--ledger", "mysql://exports@db.example.internal/ims_nb"])
    assert exit_info.value.code == 2 and "SQLite or PostgreSQL, not mysql" in capsys.readouterr().err
