"""``ims-nb app``: its arguments, the commands it runs (simulator or account), its notebook, and a real start/stop."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import nbformat
import psutil
import pytest

from ims_nb.app import NOTEBOOK
from ims_nb.cli import app
from ims_nb.cli._main import build_parser, main
from ims_nb.cli.app import DEFAULT_APP_PORT, app_commands, app_url, on_account, voila_command

KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}


def test_the_app_takes_the_simulators_options_and_its_port() -> None:
    args = build_parser().parse_args(["app"])
    assert (args.app_port, args.port, args.time_scale, args.state, args.manual_clock) == (DEFAULT_APP_PORT, 0, 60.0,
                                                                                          None, False)  # fmt: skip
    args = build_parser().parse_args(["app", "--app-port", "9000", "--seed", "3", "--images", "50",
                                      "--manual-clock", "--state", "w.sqlite"])  # fmt: skip
    assert (args.app_port, args.seed, args.images, args.manual_clock, args.state) == (9000, 3, 50, True,
                                                                                      Path("w.sqlite"))  # fmt: skip


BAD = [["app", "--app-port", "0"], ["app", "--app-port", "70000"], ["app", "--app-port", "x"],
       ["app", "--time-scale", "2", "--manual-clock"]]  # fmt: skip


@pytest.mark.parametrize("argv", BAD)
def test_bad_app_arguments_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(argv)
    assert exit_info.value.code == 2 and "error:" in capsys.readouterr().err


def test_on_a_simulator_the_app_runs_ims_nb_sim_and_voila_on_its_notebook() -> None:
    args = build_parser().parse_args(["app", "--app-port", "9100", "--time-scale", "600", "--state", "w.sqlite"])
    commands = app_commands(args, account=False)
    assert commands.simulator == [sys.executable, "-m", "ims_nb", "sim", "--host=127.0.0.1", "--port=0", "--seed=0",
                                  "--images=200", "--region=cn-north-4", "--time-scale=600.0",
                                  "--state=w.sqlite"]  # fmt: skip
    assert commands.voila == voila_command(9100)
    assert commands.voila[:5] == [sys.executable, "-m", "voila", str(NOTEBOOK), "--port=9100"]
    for option in ("--no-browser", "--Voila.ip=127.0.0.1", "--VoilaConfiguration.strip_sources=True"):
        assert option in commands.voila
    assert app_url(9100) == "http://127.0.0.1:9100/"


def test_on_an_account_the_app_starts_no_simulator(monkeypatch: pytest.MonkeyPatch, clean_env: Path) -> None:
    assert not on_account()
    monkeypatch.setenv("HUAWEICLOUD_SDK_AK", "AK-OF-MINE")
    monkeypatch.setenv("HUAWEICLOUD_SDK_SK", "sk-of-mine")
    assert on_account()
    commands = app_commands(build_parser().parse_args(["app"]), account=on_account())
    assert commands.simulator is None and commands.voila == voila_command(DEFAULT_APP_PORT)


class FakeChild:
    """A child process that has already ended with 0, recording how it was started."""

    started: list[FakeChild] = []

    def __init__(self, command: list[str], **options: object) -> None:
        self.command, self.options = command, options
        FakeChild.started.append(self)

    def wait(self, timeout: float | None = None) -> int:
        return 0

    def poll(self) -> int:
        return 0


def test_on_an_account_run_app_starts_only_voila_and_says_so(
    monkeypatch: pytest.MonkeyPatch, clean_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HUAWEICLOUD_SDK_AK", "AK-OF-MINE")
    monkeypatch.setenv("HUAWEICLOUD_SDK_SK", "sk-of-mine")
    monkeypatch.setenv("HUAWEICLOUD_SDK_REGION", "ap-southeast-1")
    monkeypatch.setenv("IMS_NB_LEDGER", "/srv/ledger.sqlite")
    monkeypatch.setattr(subprocess, "Popen", FakeChild)
    monkeypatch.setattr(app, "wait_listening", lambda port, child: True)  # the fake Voilà "answers" at once
    monkeypatch.setattr(app, "first_free_port", lambda port: port)
    FakeChild.started = []
    assert main(["app", "--app-port", "9200"]) == 0
    [voila] = FakeChild.started
    assert voila.command == voila_command(9200)
    env = voila.options["env"]
    assert isinstance(env, dict) and env["HUAWEICLOUD_SDK_AK"] == "AK-OF-MINE" and "IMS_NB_SIM" not in env
    out = capsys.readouterr().out
    assert out == ("ims-nb app: http://127.0.0.1:9200/ on your account (region ap-southeast-1); exports are "
                   "recorded in /srv/ledger.sqlite\n")  # fmt: skip
    assert "sk-of-mine" not in out


def test_the_app_notebook_is_thin_with_a_kernelspec_and_no_outputs() -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    assert notebook.metadata["kernelspec"] == KERNELSPEC
    sources = [cell.source for cell in notebook.cells]
    assert sources == ["from ims_nb.app import open_dashboard", "open_dashboard()"]
    assert all(cell.cell_type == "code" and cell.outputs == [] and cell.execution_count is None
               for cell in notebook.cells)  # fmt: skip


def descendants(pid: int) -> list[psutil.Process]:
    return psutil.Process(pid).children(recursive=True)


def test_app_serves_the_dashboard_on_the_port_it_prints_and_stops_with_its_children_on_sigterm(
    tmp_path: Path,
) -> None:
    log = tmp_path / "app.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HUAWEICLOUD_SDK_", "IMS_NB_"))}
    env["HUAWEICLOUD_SDK_CREDENTIALS_FILE"] = str(tmp_path / "no-credentials")
    with socket.socket() as taken, log.open("w") as out:  # the asked port is taken: the app serves the next one
        taken.bind(("127.0.0.1", 0))
        asked = taken.getsockname()[1]
        process = subprocess.Popen(
            [sys.executable, "-m", "ims_nb", "app", "--port", "0", "--app-port", str(asked),
             "--state", str(tmp_path / "world.sqlite")],
            stdout=out, stderr=subprocess.STDOUT, text=True, env=env,
        )  # fmt: skip
        port = announced_port(log, process)
    assert port != asked
    try:
        page = wait_for_page(app_url(port), process, log)
        assert page.status_code == 200
        for source in ("from ims_nb.app import", "open_dashboard()"):
            assert source not in page.text  # Voilà strips the code cells
        assert "application/vnd.jupyter.widget-view+json" in page.text  # the dashboard, rendered server-side
        assert "Traceback" not in page.text and "SimulatorWarning" not in page.text
        [announced] = [line for line in log.read_text().splitlines() if line.startswith("ims-nb app:")]
        assert announced.startswith(f"ims-nb app: {app_url(port)} on the SIMULATOR at http://127.0.0.1:")
        assert f"{tmp_path / 'world.sqlite'}.ledger.sqlite" in announced
        children = descendants(process.pid)
        assert len(children) >= 3  # the simulator, Voilà and the dashboard's kernel
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        gone, alive = psutil.wait_procs(children, timeout=10)
        assert alive == [], alive
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def announced_port(log: Path, process: subprocess.Popen[str], timeout: float = 90.0) -> int:
    """The port in the ``ims-nb app: URL ...`` line, printed once Voilà accepts connections."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in log.read_text().splitlines():
            if line.startswith("ims-nb app: http://127.0.0.1:"):
                port = int(line.split(":")[3].split("/")[0])
                with socket.create_connection(("127.0.0.1", port), timeout=5):
                    return port
        assert process.poll() is None, log.read_text()[-3000:]
        time.sleep(0.2)
    raise AssertionError(f"no ims-nb app line in {timeout:.0f} s:\n{log.read_text()[-3000:]}")


def wait_for_page(url: str, process: subprocess.Popen[str], log: Path, timeout: float = 90.0) -> httpx.Response:
    """The first answer to ``GET /`` (Voilà answers once the notebook has run)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()[-3000:]
        try:
            return httpx.get(url, timeout=60)
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer in {timeout:.0f} s:\n{log.read_text()[-3000:]}")


def test_the_notebook_is_package_data() -> None:
    pyproject = (Path(__file__).parent.parent.parent / "pyproject.toml").read_text()
    assert '"ims_nb.app" = ["*.ipynb", "jupyter/voila/templates/*/*"]' in pyproject  # the notebook, its template
    assert json.loads(NOTEBOOK.read_text())["nbformat"] == 4


def test_voila_uses_the_apps_template_which_links_no_cdn() -> None:
    from ims_nb.app import DATA_DIR, TEMPLATE, voila_env

    assert f"--VoilaConfiguration.template={TEMPLATE}" in voila_command(9100)
    env = voila_env({"JUPYTER_PATH": "/a", "HOME": "/h"})
    assert env == {"JUPYTER_PATH": os.pathsep.join([str(DATA_DIR), "/a"]), "HOME": "/h"}
    assert voila_env({})["JUPYTER_PATH"] == str(DATA_DIR)
    template = DATA_DIR / "voila" / "templates" / TEMPLATE
    assert json.loads((template / "conf.json").read_text()) == {"base_template": "lab"}
    assert "https://" in (template / "index.html.j2").read_text()  # the filter that drops Voilà's CDN links
