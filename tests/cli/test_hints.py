"""Errors that say what to do, in the CLI's spelling; Ctrl-C at any moment is one line and exit 130."""

from __future__ import annotations

import argparse
import io
import signal
import subprocess
import sys
import time

import pytest

from ims_nb.cli._console import EXIT_INTERRUPTED, Console, cli_spelling, run_client_verb
from ims_nb.client.config import ENV_REGION
from ims_nb.errors import ConfigError
from tests.cli.helpers import run_cli


@pytest.mark.parametrize(
    ("library", "cli"),
    [
        ("pass project_id= or set HUAWEICLOUD_SDK_PROJECT_ID", "pass --project-id or set HUAWEICLOUD_SDK_PROJECT_ID"),
        ("give ca_bundle=PATH for a private CA, or insecure=True to skip", "give --ca-bundle PATH for a private CA, "
         "or --insecure to skip"),
        ("export normally (quick=False), or use fast export (quick=True)", "export normally (no --quick), or use "
         "fast export (--quick)"),
        ("Credentials(ak='AK', region='x')", "Credentials(ak='AK', region='x')"),
    ],
)  # fmt: skip
def test_library_keyword_hints_take_the_cli_spelling(library: str, cli: str) -> None:
    assert cli_spelling(library) == cli


def test_a_verb_error_names_the_cli_option_not_the_keyword() -> None:
    def verb(args: argparse.Namespace, console: Console) -> int:
        raise ConfigError("cannot discover the project id of region 'cn-north-4' (2 projects); pass project_id= or "
                          "set HUAWEICLOUD_SDK_PROJECT_ID")  # fmt: skip

    stderr = io.StringIO()
    assert run_client_verb(argparse.Namespace(verb="images"), verb, stderr) == 2
    assert "pass --project-id or set" in stderr.getvalue() and "project_id=" not in stderr.getvalue()


def test_a_bucket_url_written_as_a_url_is_answered_use_bucket_key(bare_env: dict[str, str]) -> None:
    result = run_cli(["preflight", "--bucket-url", "obs://bucket/x.qcow2", "--format", "qcow2"], bare_env)
    assert result.returncode == 2 and len(result.stderr.splitlines()) == 1
    assert "use BUCKET:KEY" in result.stderr and "bucket:x.qcow2" in result.stderr


@pytest.mark.parametrize("verb", [["preflight", "--bucket-url", "bucket:{id}.qcow2", "--format", "qcow2"],
                                  ["export", "--bucket", "bucket", "--quick", "--dry-run"]])  # fmt: skip
def test_an_image_name_given_as_image_id_hints_at_name(bare_env: dict[str, str], verb: list[str]) -> None:
    result = run_cli([*verb[:1], "my-ubuntu-image", *verb[1:]], bare_env)
    assert result.returncode == 2
    assert "no such image: my-ubuntu-image" in result.stderr and "--name my-ubuntu-image" in result.stderr


def test_a_mistyped_region_in_the_environment_is_an_error_on_the_simulator(bare_env: dict[str, str]) -> None:
    result = run_cli(["images", "--max-items", "1"], {**bare_env, ENV_REGION: "cn-nort-4"})
    assert result.returncode == 2 and len(result.stderr.splitlines()) == 1
    assert ENV_REGION in result.stderr and "'cn-nort-4'" in result.stderr and "cn-north-4" in result.stderr


@pytest.mark.parametrize("verb", ["images", "preflight", "export", "jobs"])
def test_the_client_verbs_do_not_import_the_simulator_server(verb: str) -> None:
    code = (f"import sys\nfrom ims_nb.cli import main\ntry:\n    main([{verb!r}, '--help'])\nexcept SystemExit:\n"
            "    pass\nprint(sorted(m for m in sys.modules if m.split('.')[0] in ('uvicorn', 'starlette')))"
            )  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


#: ``python -m ims_nb images``, saying first that the interpreter is up: a Ctrl-C before that (in ``site``, which a
#: loaded machine can make last 0.2 s) is Python's to handle, not ours.
INTERPRETER_UP = "interpreter up"
PYTHON_M_IMS_NB_IMAGES = (
    f"import runpy, sys; print({INTERPRETER_UP!r}, file=sys.stderr, flush=True); "
    "sys.argv = ['ims_nb', 'images']; runpy.run_module('ims_nb', run_name='__main__')"
)


@pytest.mark.parametrize("delay", [0.2, 0.5])
def test_images_interrupted_early_prints_one_line_and_exits_130(bare_env: dict[str, str], delay: float) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", PYTHON_M_IMS_NB_IMAGES], env=bare_env, text=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert child.stderr is not None and child.stderr.readline().strip() == INTERPRETER_UP
    time.sleep(delay)
    child.send_signal(signal.SIGINT)
    _, stderr = child.communicate(timeout=60)
    lines = [line for line in stderr.splitlines() if not line.startswith("SIMULATOR:")]
    assert child.returncode == EXIT_INTERRUPTED, stderr
    assert lines == ["ims-nb images: error: interrupted"]
