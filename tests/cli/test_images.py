"""``ims-nb images``: every image once, filters, the four formats, ``-o``, progress, notices, errors and exit codes."""

from __future__ import annotations

import csv
import io
import json
import re
import socket
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from ims_nb.cli._main import build_parser
from ims_nb.cli._output import TableColumn, table_lines
from ims_nb.cli._progress import ProgressLine, progress_line
from tests.cli.helpers import connect_line, run_cli, run_main
from tests.helpers import cli_simulator

README = (Path(__file__).parent.parent.parent / "README.md").read_text()
ISO_SECOND = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
SECRET = "not-the-real-sk-but-secret-0123456789"


# --- fixtures: one simulator process with 1500 images, and a machine without credentials -----------


@pytest.fixture(scope="module")
def sim_line() -> Iterator[str]:
    """The JSON line of ``ims-nb sim --port 0 --seed 0 --images 1500``, running in a subprocess."""
    with cli_simulator("--images", "1500") as line:
        yield line


@pytest.fixture(scope="module")
def all_ids(sim_info: dict[str, str]) -> list[str]:
    """Every image id, paged through the API by the library."""
    with connect_line(sim_info) as client:
        return [record["id"] for record in client.iter_images()]


def _run(args: list[str], env: dict[str, str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return run_cli(["images", *args], env, stdin=stdin)


def _main(argv: list[str]) -> int:
    return run_main(["images", *argv])


def _closed_port() -> int:
    """A loopback port that nothing listens on (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _csv_ids(text: str) -> list[str]:
    return [row["id"] for row in csv.DictReader(io.StringIO(text))]


def _assert_one_clean_line(err: str, *forbidden: str) -> None:
    errors = [line for line in err.splitlines() if not line.startswith("SIMULATOR:")]
    assert len(errors) == 1 and "error:" in errors[0], err
    assert "Traceback" not in err
    for text in forbidden:
        assert text not in err


# --- the done-when check ---------------------------------------------------------------------------


def test_csv_lists_every_image_of_the_simulator_exactly_once(
    sim_line: str, sim_info: dict[str, str], all_ids: list[str], bare_env: dict[str, str]
) -> None:
    state = httpx.get(f"{sim_info['endpoint']}/_sim/state").json()
    result = _run(["--format", "csv", "--sim", sim_line], bare_env)
    assert result.returncode == 0, result.stderr
    counts = Counter(_csv_ids(result.stdout))
    assert len(counts) == state["images"] == 1500
    assert set(counts) == set(all_ids) and set(counts.values()) == {1}
    assert result.stderr.count("SIMULATOR:") == 1 and "Traceback" not in result.stderr
    assert sim_info["sk"] not in result.stdout + result.stderr


def test_csv_has_every_typed_column_with_tags_joined(sim_line: str, sim_info: dict[str, str], bare_env: Any) -> None:
    with connect_line(sim_info) as client:
        frame = client.images(max_items=50)
    result = _run(["--format", "csv", "--max-items", "50", "--sim", sim_line], bare_env)
    back = pd.read_csv(io.StringIO(result.stdout), keep_default_na=False)
    assert list(back.columns) == list(frame.columns)
    assert back["tags"].tolist() == [";".join(tags) for tags in frame["tags"]]
    assert all(ISO_SECOND.match(text) for text in back["created_at"])
    assert back["size_bytes"].tolist() == frame["size_bytes"].tolist()


# --- filters ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "filters"),
    [
        (["--imagetype", "gold"], {"imagetype": "gold"}),
        (["--status", "active", "--os-type", "Windows"], {"status": "active", "os_type": "Windows"}),
        (["--platform", "Ubuntu", "--visibility", "private"], {"platform": "Ubuntu", "visibility": "private"}),
        (["--tag", "env=prod"], {"tag": "env=prod"}),
        (["--created-at", "gte:2025-06-01"], {"created_at": "gte:2025-06-01T00:00:00Z"}),
        (["--updated-at", "lt:2024-06-01T08:00:00+08:00"], {"updated_at": "lt:2024-06-01T00:00:00Z"}),
        (["--whole-image"], {"whole_image": True}),
        (["--disk-format", "iso", "--architecture", "x86"], {"disk_format": "iso", "architecture": "x86"}),
        (["--filter", "min_disk=40", "--filter", "protected=false"], {"min_disk": "40", "protected": "false"}),
    ],
)
def test_filters_narrow_the_listing_as_the_library_does(
    argv: list[str],
    filters: dict[str, Any],
    sim_line: str,
    sim_info: dict[str, str],
    all_ids: list[str],
    bare_env: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with connect_line(sim_info) as client:
        expected = [record["id"] for record in client.iter_images(**filters)]
    assert _main([*argv, "--format", "csv", "--sim", sim_line]) == 0
    ids = _csv_ids(capsys.readouterr().out)
    assert ids == expected and 0 < len(ids) < len(all_ids)


def test_sorting_and_max_items(sim_line: str, bare_env: Any, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--sort-key", "name", "--sort-dir", "asc", "--max-items", "1200", "--format", "csv", "--sim", sim_line]
    assert _main(argv) == 0
    names = [row["name"] for row in csv.DictReader(io.StringIO(capsys.readouterr().out))]
    assert len(names) == 1200 and names == sorted(names)


# --- formats and -o --------------------------------------------------------------------------------


def test_json_is_records_with_iso_times_and_nulls(
    sim_line: str, sim_info: dict[str, str], bare_env: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    with connect_line(sim_info) as client:
        frame = client.images(max_items=40)
    assert _main(["--format", "json", "--max-items", "40", "--sim", sim_line]) == 0
    records = json.loads(capsys.readouterr().out)
    assert [record["id"] for record in records] == frame["id"].tolist()
    assert all(list(record) == list(frame.columns) for record in records)
    assert all(ISO_SECOND.match(record["created_at"]) for record in records)
    assert [record["tags"] for record in records] == frame["tags"].tolist()
    assert {type(record["size_bytes"]) for record in records} == {int}
    assert None in {record["kms_key_id"] for record in records}  # <NA> is null


def test_table_shows_the_main_columns_and_fits_the_terminal(
    sim_line: str,
    all_ids: list[str],
    bare_env: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert _main(["--max-items", "12", "--sim", sim_line]) == 0  # not a terminal: every column, full width
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["ID", "NAME", "STATUS", "TYPE", "OS", "SIZE_GB", "FORMAT", "CREATED", "(UTC)"]
    assert [line.split()[0] for line in lines[1:]] == all_ids[:12]
    monkeypatch.setenv("COLUMNS", "80")
    assert _main(["--max-items", "12", "--sim", sim_line]) == 0
    narrow = capsys.readouterr().out.splitlines()
    assert len(narrow) == 13 and max(map(len, narrow)) <= 80
    assert narrow[0].split()[:2] == ["ID", "NAME"] and "FORMAT" not in narrow[0]
    assert [line.split()[0] for line in narrow[1:]] == all_ids[:12]


def test_table_lines_drop_by_order_cut_names_and_count_wide_characters() -> None:
    frame = pd.DataFrame({"id": ["a1", "b2"], "name": ["镜像-web-服务器-生产环境", "short"], "n": [1.0, None]})
    columns = (
        TableColumn("id", "ID"),
        TableColumn("name", "NAME", min_width=10),
        TableColumn("n", "N", drop_order=1, right=True),
    )
    wide = table_lines(frame, columns, None)  # the name takes 24 terminal columns
    assert wide[1:] == ["a1  镜像-web-服务器-生产环境  1.0", "b2  " + "short".ljust(24) + "    -"]
    lines = table_lines(frame, columns, 16)
    assert lines[0].split() == ["ID", "NAME"]  # N dropped first; the name is cut to what is left
    assert lines[1] == "a1  镜像-web-服…" and len(lines[2]) <= 16


@pytest.mark.parametrize("file_format", ["csv", "json", "table"])
def test_output_file_keeps_stdout_empty(
    file_format: str,
    sim_line: str,
    all_ids: list[str],
    bare_env: Any,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    target = tmp_path / f"images.{file_format}"
    assert _main(["--format", file_format, "-o", str(target), "--sim", sim_line]) == 0
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("SIMULATOR:")
    text = target.read_text(encoding="utf-8")
    assert all_ids[0] in text and all_ids[-1] in text
    assert [p.name for p in tmp_path.iterdir()] == [target.name]  # no temporary file left behind


def test_parquet_round_trips_the_dtypes(
    sim_line: str, sim_info: dict[str, str], bare_env: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("pyarrow")
    target = tmp_path / "images.parquet"
    assert _main(["--format", "parquet", "-o", str(target), "--sim", sim_line]) == 0
    assert capsys.readouterr().out == ""
    with connect_line(sim_info) as client:
        frame = client.images()
    back = pd.read_parquet(target)
    assert back.dtypes.to_dict() == frame.dtypes.to_dict()
    pd.testing.assert_frame_equal(back.drop(columns="tags"), frame.drop(columns="tags"))
    assert [list(tags) for tags in back["tags"]] == frame["tags"].tolist()


def test_parquet_without_pyarrow_says_how_to_install_it(
    sim_line: str, bare_env: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "pyarrow" else find_spec(name, *a)
    )
    assert _main(["--format", "parquet", "-o", str(tmp_path / "x.parquet"), "--sim", sim_line]) == 2
    err = capsys.readouterr().err
    _assert_one_clean_line(err)
    assert "pip install 'ims-nb[parquet]'" in err and not (tmp_path / "x.parquet").exists()


# --- progress and notices --------------------------------------------------------------------------


def test_progress_goes_to_stderr_and_stdout_stays_clean_csv(
    sim_line: str, all_ids: list[str], bare_env: dict[str, str]
) -> None:
    result = _run(["--format", "csv", "--progress", "--sim", sim_line], bare_env)
    assert result.returncode == 0, result.stderr
    assert re.search(r"ims-nb images: 1,500 images, 2 pages, [\d.]+ s elapsed", result.stderr)
    assert result.stdout.startswith("id,name,") and sorted(_csv_ids(result.stdout)) == sorted(all_ids)
    assert "\r" not in result.stdout and "elapsed" not in result.stdout


@pytest.mark.parametrize("flag", [[], ["--quiet"]])
def test_no_progress_when_stderr_is_not_a_terminal_or_quiet(flag: list[str], sim_line: str, bare_env: Any) -> None:
    result = _run([*flag, "--format", "csv", "--max-items", "5", "--sim", sim_line], bare_env)
    assert result.returncode == 0 and "elapsed" not in result.stderr


def test_progress_line_counts_items_and_pages() -> None:
    now = [100.0]
    stream = io.StringIO()
    with ProgressLine(stream, "ims-nb images", noun="images", clock=lambda: now[0], interval=60) as progress:
        progress.page()
        progress.add(1000)
        now[0] += 2.0
    assert stream.getvalue() == "\rims-nb images: 1,000 images, 1 page, 2.0 s elapsed, 500/s\n"
    quiet = io.StringIO()
    with ProgressLine(quiet, "x", enabled=False) as progress:
        progress.add()
    assert quiet.getvalue() == "" and progress.items == 1


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("argv", "stream", "enabled", "drawn"),
    [
        ([], _Terminal(), True, False),  # a terminal: on, but a quick listing draws nothing
        (["--quiet"], _Terminal(), False, False),
        ([], io.StringIO(), False, False),  # a pipe or a file
        (["--progress"], io.StringIO(), True, True),  # forced: drawn even when quick
    ],
)
def test_progress_line_follows_the_flags_and_the_terminal(
    argv: list[str], stream: io.StringIO, enabled: bool, drawn: bool
) -> None:
    args = build_parser().parse_args(["images", *argv])
    with progress_line(args, stream, "ims-nb images", "images") as progress:
        progress.add(3)
    assert progress.enabled is enabled and bool(stream.getvalue()) is drawn


def test_the_sim_line_can_come_from_stdin_or_ims_nb_sim(sim_line: str, bare_env: dict[str, str]) -> None:
    piped = _run(["--sim", "-", "--format", "csv", "--max-items", "7"], bare_env, stdin=sim_line + "\n")
    from_env = _run(["--format", "csv", "--max-items", "7"], dict(bare_env, IMS_NB_SIM=sim_line))
    assert piped.returncode == from_env.returncode == 0
    assert len(_csv_ids(piped.stdout)) == 7 and piped.stdout == from_env.stdout
    assert from_env.stderr.count("SIMULATOR:") == 1 and "no credentials configured" in from_env.stderr


def test_the_embedded_simulator_is_announced_once(bare_env: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert _main(["--format", "json", "--max-items", "3"]) == 0  # a SimulatorWarning must not become an error
    out, err = capsys.readouterr()
    assert len(json.loads(out)) == 3
    assert err.count("SIMULATOR:") == 1 and len(err.splitlines()) == 1


# --- errors ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["--format", "xml"],
        ["--created-at", "soon"],
        ["--created-at", "after:2025-01-01"],
        ["--tag", "no-value"],
        ["--status", "gone"],
        ["--max-items", "-1"],
        ["--filter", "flavour=big"],
        ["--filter", "limit=5"],
        ["--imagetype", "gold", "--filter", "__imagetype=private"],
        ["--format", "parquet"],
        ["-o", "/nonexistent-folder/images.csv"],
        ["--sim", '{"endpoint": "http://127.0.0.1:1"}'],
        ["--sim", "SIM", "--ak", "AKAKAKAKAK"],
        ["--sim", "SIM", "--region", "eu-west-0"],
        ["--region", "mars-1"],
        ["--ak", "AKWITHOUTSK"],
    ],
)
def test_bad_arguments_exit_2_with_one_line(
    argv: list[str], sim_line: str, bare_env: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [sim_line if arg == "SIM" else arg for arg in argv]
    assert _main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    _assert_one_clean_line(err, json.loads(sim_line)["sk"])


def test_bad_arguments_in_a_real_process_print_no_traceback(bare_env: dict[str, str]) -> None:
    result = _run(["--format", "parquet", "--region", "cn-north-4"], bare_env)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == "ims-nb images: error: --format parquet writes a file: give -o FILE\n"


def test_a_refused_ak_exits_1_with_one_line_and_no_sk(sim_info: dict[str, str], bare_env: dict[str, str]) -> None:
    env = dict(bare_env, HUAWEICLOUD_SDK_AK="WRONGAKWRONGAK00", HUAWEICLOUD_SDK_SK=SECRET)
    result = _run(["--endpoint", sim_info["endpoint"], "--format", "csv"], env)
    assert result.returncode == 1 and result.stdout == ""
    _assert_one_clean_line(result.stderr, SECRET, sim_info["sk"])
    assert "401 APIGW.0301" in result.stderr


def test_ak_option_takes_its_sk_from_the_environment(sim_info: dict[str, str], bare_env: dict[str, str]) -> None:
    env = dict(bare_env, HUAWEICLOUD_SDK_SK=sim_info["sk"])
    argv = ["--ak", sim_info["ak"], "--endpoint", sim_info["endpoint"], "--region", sim_info["region"]]
    result = _run([*argv, "--format", "csv", "--max-items", "3"], env)
    assert result.returncode == 0, result.stderr
    assert len(_csv_ids(result.stdout)) == 3 and result.stderr == ""
    wrong = _run([*argv, "--format", "csv"], dict(env, HUAWEICLOUD_SDK_SK=SECRET))
    assert wrong.returncode == 1
    _assert_one_clean_line(wrong.stderr, SECRET)


def test_a_service_error_exits_1(
    sim_line: str, sim_info: dict[str, str], bare_env: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    body = json.dumps({"error": {"code": "IMG.0001", "message": "The parameter is invalid.\nTry again."}})
    fault = {"kind": "response", "method": "GET", "path": "^/v2/cloudimages", "status": 400, "body": body}
    httpx.post(f"{sim_info['endpoint']}/_sim/faults", json=fault).raise_for_status()
    assert _main(["--format", "csv", "--sim", sim_line]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    _assert_one_clean_line(err, sim_info["sk"])
    assert "400 IMG.0001: The parameter is invalid. Try again." in err


def test_a_transport_error_exits_1(bare_env: dict[str, str]) -> None:
    env = dict(bare_env, HUAWEICLOUD_SDK_AK="AKAKAKAKAKAKAK", HUAWEICLOUD_SDK_SK=SECRET)
    result = _run(["--endpoint", f"http://127.0.0.1:{_closed_port()}", "--project-id", "p1", "--max-items", "1"], env)
    assert result.returncode == 1
    _assert_one_clean_line(result.stderr, SECRET)
    assert "ConnectError" in result.stderr


# --- documentation ---------------------------------------------------------------------------------


def test_help_says_where_the_sk_comes_from(capsys: pytest.CaptureFixture[str]) -> None:
    assert _main(["--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "never a command-line option" in text and "HUAWEICLOUD_SDK_SK" in text
    for option in ("--sim", "--filter NAME=VALUE", "--whole-image, --no-whole-image", "--created-at OP:TIME"):
        assert option in text


def test_every_verb_and_the_main_images_options_are_in_the_readme() -> None:
    verbs = next(a for a in build_parser()._actions if a.dest == "verb").choices
    assert verbs is not None
    for verb in verbs:
        assert f"ims-nb {verb}" in README, verb
    section = README.split("## Command line")[1].split("\n## ")[0]
    for option in ("--format", "--sim", "--filter NAME=VALUE", "--progress", "--quiet", "-o FILE", "--max-items"):
        assert option in section, option
