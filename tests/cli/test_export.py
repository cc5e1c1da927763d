"""``ims-nb export`` and ``ims-nb jobs``: dry runs send nothing, plan files round-trip, launches happen once,
the ledger is listed and watched to the end, refusals exit 3, bad arguments exit 2 in one line."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest

import ims_nb
from ims_nb.cli._main import build_parser
from ims_nb.cli._progress import JobBars, duration_text, job_line
from ims_nb.exports.history import HISTORY_COLUMNS
from ims_nb.exports.watch import Progress
from ims_nb.vocab import LIVE as LIVE_STATES
from tests.cli.helpers import run_cli, run_main
from tests.helpers import cli_simulator

GiB = 1024**3
BUCKET = "ims-exports-cn-north-4"
FINAL = {"verified", "failed", "missing", "refused"}
README = (Path(__file__).parent.parent.parent / "README.md").read_text()


# --- fixtures: one fast-clock `ims-nb sim`, its inventory, a machine without credentials, a ledger per test ---


@pytest.fixture(scope="module")
def sim_line() -> Iterator[str]:
    """``ims-nb sim --port 0 --seed 0 --time-scale 100000``: an export job ends within a fraction of a second."""
    with cli_simulator("--time-scale", "100000") as line:
        yield line


@pytest.fixture(scope="module")
def clean_ids(clean: pd.DataFrame) -> list[str]:
    """The ids of the images no rule refuses for a normal export (``clean``)."""
    ids = clean["id"].tolist()
    assert len(ids) >= 12
    return [str(i) for i in ids]


@pytest.fixture(scope="module")
def public_id(inventory: pd.DataFrame) -> str:
    """A public image: refused (image-not-private)."""
    return str(inventory.loc[inventory["image_type"] == "gold", "id"].iloc[0])


@pytest.fixture()
def env(bare_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    """``bare_env`` with $IMS_NB_LEDGER (and the simulators' ledger, for --sim exports) in tmp_path."""
    monkeypatch.setenv("IMS_NB_LEDGER", str(tmp_path / "ledger.sqlite"))
    monkeypatch.setenv("IMS_NB_SIM_LEDGER", str(tmp_path / "ledger.sqlite"))  # --sim exports: the simulators' ledger
    return dict(os.environ)


def _run(verb: str, args: list[str], env: dict[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return run_cli([verb, *args], env, cwd=cwd)


def _sim_jobs(info: dict[str, str]) -> int:
    return len(httpx.get(f"{info['endpoint']}/_sim/state").json()["jobs"])


def _csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def _keys(prefix: str) -> list[str]:
    """Each test its own objects: an export of an earlier test leaves its object behind (object-exists)."""
    return ["--bucket", BUCKET, "--key-template", f"{prefix}/{{name}}-{{id8}}.{{ext}}"]


def _assert_one_error_line(err: str) -> None:
    lines = [line for line in err.splitlines() if not line.startswith("SIMULATOR:")]
    assert len(lines) == 1 and "error:" in lines[0], err
    assert "Traceback" not in err


# --- export: dry run, plan files, launching once ------------------------------------------------------------


def test_dry_run_sends_nothing_and_prints_the_verdicts(
    sim_line: str, sim_info: dict[str, str], clean_ids: list[str], public_id: str, env: dict[str, str], tmp_path: Path
) -> None:
    before = _sim_jobs(sim_info)
    ids = [*clean_ids[:2], public_id]
    result = _run("export", [*ids, *_keys("dry"), "--format", "qcow2", "--dry-run", "--sim", sim_line], env)
    assert result.returncode == 3, result.stderr  # some image refused, as `ims-nb preflight` says
    assert _sim_jobs(sim_info) == before
    assert not (tmp_path / "ledger.sqlite").exists()
    table, messages = result.stdout.split("\n\n")
    header, *rows = table.splitlines()
    assert header.split() == ["ID", "NAME", "TARGET", "FORMAT", "EXPORTABLE", "BLOCKING", "WARNINGS", "ACTION",
                              "REASON"]  # fmt: skip
    by_id = {row.split()[0]: row for row in rows}  # names may have spaces: look for the cells in order
    assert " no  " in by_id[public_id] and by_id[public_id].split(" no ")[1].split() == [
        "image-not-private", "-", "refused", "preflight:", "image-not-private"]  # fmt: skip
    for image_id in clean_ids[:2]:
        assert by_id[image_id].split()[-4:] == ["yes", "-", "-", "launch"]
    assert any(line.startswith(public_id) and "only your own private images" in line for line in messages.splitlines())
    assert "3 images: 2 to launch, 0 skipped (live or done in the ledger), 1 refused; nothing was sent" in result.stderr


def test_a_dry_run_plan_file_launches_its_exportable_rows(
    sim_line: str, sim_info: dict[str, str], env: dict[str, str], tmp_path: Path
) -> None:
    select = ["--imagetype", "private", "--status", "active", "--max-items", "20"]
    dry = _run("export", [*select, *_keys("plan"), "--auto", "--dry-run", "-o", "plan.csv", "--sim", sim_line], env,
               cwd=tmp_path)  # fmt: skip
    assert dry.returncode == 3 and dry.stdout == "", dry.stderr
    plan = _csv((tmp_path / "plan.csv").read_text())
    assert len(plan) == 20 and {"image_id", "bucket_url", "file_format", "quick", "exportable"} <= set(plan[0])
    exportable = {row["image_id"] for row in plan if row["exportable"] == "True"}
    assert exportable and len(exportable) < 20
    before = _sim_jobs(sim_info)

    result = _run("export", ["--plan", "plan.csv", "--output-format", "csv", "--sim", sim_line], env, cwd=tmp_path)
    assert result.returncode == 3, result.stderr
    report = _csv(result.stdout)
    assert [row["image_id"] for row in report] == [row["image_id"] for row in plan]
    assert [row["bucket_url"] for row in report] == [row["bucket_url"] for row in plan]
    assert {row["image_id"] for row in report if row["action"] == "launched"} == exportable
    assert all(row["job_id"] for row in report if row["action"] == "launched")
    assert {row["action"] for row in report if row["image_id"] not in exportable} == {"refused"}
    assert _sim_jobs(sim_info) == before + len(exportable)
    assert f"20 images: {len(exportable)} launched, 0 skipped" in result.stderr


def test_a_hand_written_plan_keeps_its_targets_and_modes(
    sim_line: str, clean_ids: list[str], env: dict[str, str], tmp_path: Path
) -> None:
    a, b, c = clean_ids[2:5]
    rows = [
        f"{a},{BUCKET}:hand/first.qcow2,qcow2,false",
        f"{b},{BUCKET}:hand/deeper/second.vhd,VHD,no",
        f"{c},{BUCKET}:hand/{c}.zvhd2,,True",
        f"{a[:8]}-not-an-image,{BUCKET}:hand/x.qcow2,qcow2,false",
    ]
    (tmp_path / "plan.csv").write_text("image_id,bucket_url,file_format,quick\n" + "\n".join(rows[:3]) + "\n")
    result = _run("export", ["--plan", "plan.csv", "--dry-run", "--output-format", "json", "--sim", sim_line], env,
                  cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    records = json.loads(result.stdout)
    assert [(r["image_id"], r["bucket_url"], r["file_format"], r["quick"]) for r in records] == [
        (a, f"{BUCKET}:hand/first.qcow2", "qcow2", False),
        (b, f"{BUCKET}:hand/deeper/second.vhd", "vhd", False),
        (c, f"{BUCKET}:hand/{c}.zvhd2", None, True),
    ]
    assert all(r["exportable"] and r["action"] == "launch" for r in records)
    (tmp_path / "plan.csv").write_text("image_id,bucket_url,file_format,quick\n" + "\n".join(rows) + "\n")
    unknown = _run("export", ["--plan", "plan.csv", "--dry-run", "--sim", sim_line], env, cwd=tmp_path)
    assert unknown.returncode == 2 and "no such image" in unknown.stderr
    _assert_one_error_line(unknown.stderr)


def test_a_plan_with_hand_edited_template_free_keys_exports_exactly_those_keys(
    sim_line: str, sim_info: dict[str, str], clean_ids: list[str], env: dict[str, str], tmp_path: Path
) -> None:
    """No key template gives these keys (each its own shape): they are sent as written, one POST each."""
    a, b, c = clean_ids[8:11]
    keys = {a: "hand-edited/2024_q1/odd.qcow2", b: f"x-{b[-4:]}/{a[:8]}.vhd", c: "edited-flat.zvhd2"}
    rows = [f"{a},{BUCKET}:{keys[a]},qcow2,false", f"{b},{BUCKET}:{keys[b]},vhd,false", f"{c},{BUCKET}:{keys[c]},,true"]
    (tmp_path / "plan.csv").write_text("image_id,bucket_url,file_format,quick\n" + "\n".join(rows) + "\n")
    before = {job["job_id"] for job in httpx.get(f"{sim_info['endpoint']}/_sim/state").json()["jobs"]}
    result = _run("export", ["--plan", "plan.csv", "--output-format", "csv", "--sim", sim_line], env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    report = _csv(result.stdout)
    assert [(row["image_id"], row["bucket_url"], row["action"]) for row in report] == [
        (image_id, f"{BUCKET}:{keys[image_id]}", "launched") for image_id in (a, b, c)
    ]
    jobs = httpx.get(f"{sim_info['endpoint']}/_sim/state").json()["jobs"]
    sent = {job["entities"]["image_id"]: job["bucket_url"] for job in jobs if job["job_id"] not in before}
    assert sent == {image_id: f"{BUCKET}:{key}" for image_id, key in keys.items()}


def test_the_same_export_twice_launches_nothing_the_second_time(
    sim_line: str, sim_info: dict[str, str], clean_ids: list[str], env: dict[str, str]
) -> None:
    args = [*clean_ids[5:8], *_keys("twice"), "--format", "vhd", "--output-format", "csv", "--sim", sim_line]
    first = _run("export", args, env)
    assert first.returncode == 0, first.stderr
    assert [row["action"] for row in _csv(first.stdout)] == ["launched"] * 3
    before = _sim_jobs(sim_info)
    second = _run("export", args, env)
    assert second.returncode == 0, second.stderr
    report = _csv(second.stdout)
    assert [row["action"] for row in report] == ["skipped"] * 3
    assert all(row["reason"].startswith("already ") and row["job_id"] for row in report)
    assert _sim_jobs(sim_info) == before
    assert "3 images: 0 launched, 3 skipped (live or done in the ledger), 0 refused" in second.stderr
    forced = _run("export", [*args, "--force"], env)  # the ledger no longer stops it; the objects exist now
    assert forced.returncode == 3, forced.stderr
    assert {(row["action"], row["reason"]) for row in _csv(forced.stdout)} == {("refused", "preflight: object-exists")}
    assert _sim_jobs(sim_info) == before


def test_a_selection_of_no_image_launches_nothing(sim_line: str, env: dict[str, str]) -> None:
    result = _run("export", ["--name", "no-image-has-this-name", *_keys("none"), "--quick", "--sim", sim_line], env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["ID", "NAME", "TARGET", "ACTION", "STATE", "JOB", "REASON"]
    assert "0 images: 0 launched" in result.stderr


def test_a_refused_image_exits_3_and_is_not_sent(
    sim_line: str, sim_info: dict[str, str], public_id: str, env: dict[str, str], tmp_path: Path
) -> None:
    before = _sim_jobs(sim_info)
    result = _run("export", [public_id, *_keys("refused"), "--quick", "--sim", sim_line], env)
    assert result.returncode == 3, result.stderr
    assert _sim_jobs(sim_info) == before
    row = result.stdout.splitlines()[1].split()
    assert row[0] == public_id and row[-5:] == ["refused", "-", "-", "preflight:", "image-not-private"]
    assert "1 image: 0 launched, 0 skipped (live or done in the ledger), 1 refused" in result.stderr
    assert ims_nb.Ledger(tmp_path / "ledger.sqlite").rows() == []  # nothing claimed


def test_export_watch_follows_its_jobs_to_the_end(
    sim_line: str, clean_ids: list[str], env: dict[str, str], tmp_path: Path
) -> None:
    result = _run("export", [*clean_ids[8:10], *_keys("watch"), "--format", "zvhd", "--watch", "--progress",
                             "--sim", sim_line], env)  # fmt: skip
    with ims_nb.Ledger(tmp_path / "ledger.sqlite") as ledger:
        states = [row["state"] for row in ledger.rows()]
    assert len(states) == 2 and set(states) <= FINAL
    assert result.returncode == (1 if {"failed", "missing"} & set(states) else 0), result.stderr
    assert "2 launched exports: " in result.stderr
    assert "[" in result.stderr and "%" in result.stderr  # the job bars (--progress)


# --- jobs -------------------------------------------------------------------------------------------------


@pytest.fixture()
def launched(sim_line: str, clean_ids: list[str], env: dict[str, str]) -> list[dict[str, str]]:
    """Three exports launched through the test's ledger (their report rows)."""
    result = _run("export", [*clean_ids[10:13], *_keys(f"jobs-{time.time_ns()}"), "--format", "qcow2",
                             "--output-format", "csv", "--sim", sim_line], env)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return _csv(result.stdout)


def test_jobs_lists_the_ledger_as_table_csv_and_json(
    launched: list[dict[str, str]], env: dict[str, str], tmp_path: Path
) -> None:
    job_ids = [row["job_id"] for row in launched]
    table = _run("jobs", [], env)
    assert table.returncode == 0, table.stderr
    header, *rows = table.stdout.splitlines()
    assert header.split()[:5] == ["ROW", "NAME", "FORMAT", "SIZE_GB", "STATE"] and "ERROR / NOTE" in header
    assert len(rows) == 3 and all(job_id in table.stdout for job_id in job_ids)
    assert "Traceback" not in table.stderr and "3 jobs: 3 submitted" in table.stderr
    as_csv = _run("jobs", ["--output-format", "csv"], env)
    records = _csv(as_csv.stdout)
    # ledger order is claim order: the launches go out concurrently
    assert sorted(r["job_id"] for r in records) == sorted(job_ids) and list(records[0]) == list(HISTORY_COLUMNS)
    as_json = _run("jobs", ["-o", str(tmp_path / "jobs.json")], env)  # the extension chooses JSON
    assert as_json.returncode == 0 and as_json.stdout == ""
    loaded = json.loads((tmp_path / "jobs.json").read_text())
    assert [r["job_id"] for r in loaded] == [r["job_id"] for r in records]
    assert all(r["state"] == "submitted" for r in loaded)
    only = _run("jobs", ["--state", "failed", "verified", "--output-format", "json"], env)
    assert json.loads(only.stdout) == []


def test_jobs_watch_ends_with_every_job_in_a_final_state(
    sim_line: str, launched: list[dict[str, str]], env: dict[str, str]
) -> None:
    result = _run("jobs", ["--watch", "--progress", "--output-format", "csv", "--sim", sim_line], env)
    assert result.returncode == 0, result.stderr
    records = _csv(result.stdout)
    assert sorted(r["job_id"] for r in records) == sorted(row["job_id"] for row in launched)
    assert {r["state"] for r in records} <= FINAL and "verified" in {r["state"] for r in records}
    verified = [r for r in records if r["state"] == "verified"]
    assert all(r["process_percent"] == "100.0" and float(r["duration_s"]) > 0 for r in verified)
    bars = [line for line in result.stderr.splitlines() if "] " in line]
    assert len(bars) >= 3 and all("%" in line for line in bars)
    assert result.stderr.strip().splitlines()[-1].startswith("3 jobs: ")
    again = _run("jobs", ["--state", "live", "--output-format", "json"], env)  # the ledger recorded the ends
    assert json.loads(again.stdout) == []


def test_jobs_without_a_ledger_prints_an_empty_table_and_creates_nothing(env: dict[str, str], tmp_path: Path) -> None:
    result = _run("jobs", ["--ledger", str(tmp_path / "none" / "ledger.sqlite"), "--output-format", "json"], env)
    assert result.returncode == 0 and json.loads(result.stdout) == []
    assert "no ledger at" in result.stderr and not (tmp_path / "none").exists()


def test_ctrl_c_stops_watching_exits_130_and_says_the_jobs_go_on(
    clean_ids: list[str], env: dict[str, str], tmp_path: Path
) -> None:
    with cli_simulator("--time-scale", "1") as line:  # jobs last minutes
        launch = _run("export", [*clean_ids[:2], *_keys("slow"), "--format", "qcow2", "--sim", line], env)
        assert launch.returncode == 0, launch.stderr
        elsewhere = _run("export", [clean_ids[0], *_keys("slow-elsewhere"), "--format", "vhd", "--output-format",
                                    "csv", "--sim", line], env)  # fmt: skip
        assert elsewhere.returncode == 3  # one export per image at a time: the service would answer IMG.0148
        assert _csv(elsewhere.stdout)[0]["reason"].startswith(f"already being exported to {BUCKET}:slow/")
        watcher = subprocess.Popen(
            [sys.executable, "-m", "ims_nb", "jobs", "--watch", "--progress", "--sim", line],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert watcher.stderr is not None
        seen = ""
        while "%" not in seen:  # the first job bar: watching has begun
            text = watcher.stderr.readline()
            assert text, seen
            seen += text
        watcher.send_signal(signal.SIGINT)
        out, err = watcher.communicate(timeout=30)
    assert watcher.returncode == 130, seen + err
    assert "stopped watching (Ctrl-C): 2 export job(s) go on in the cloud" in err and "Traceback" not in err
    assert err.count("stopped watching") == 1
    assert len(out.splitlines()) == 3  # the table as it stands
    with ims_nb.Ledger(tmp_path / "ledger.sqlite") as ledger:
        rows = ledger.rows()
    assert len(rows) == 2 and {row["state"] for row in rows} <= set(LIVE_STATES)


# --- bad arguments and plan files -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["export", "--bucket", BUCKET, "--format", "qcow2"], "choose the images"),
        (["export", "x", "--status", "active", "--bucket", BUCKET, "--format", "qcow2"], "not both"),
        (["export", "x", "--format", "qcow2"], "--bucket is required"),
        (["export", "x", "--bucket", BUCKET], "choose the mode"),
        (["export", "x", "--bucket", BUCKET, "--quick", "--format", "vhd"], "takes no --format"),
        (["export", "x", "--bucket", BUCKET, "--quick", "--auto"], "not allowed with argument"),
        (["export", "x", "--bucket", f"{BUCKET}:key", "--quick"], "expected a bucket name"),
        (["export", "x", "--bucket", BUCKET, "--quick", "--key-template", "{nope}.zvhd2"], "key template"),
        (["export", "x", "--bucket", BUCKET, "--format", "raw"], "invalid choice"),
        (["export", "x", "--bucket", BUCKET, "--quick", "--concurrency", "0"], "must be 1 to 32"),
        (["export", "x", "--bucket", BUCKET, "--quick", "--max-rate", "-1"], "must be positive"),
        (["export", "x", "--bucket", BUCKET, "--quick", "--dry-run", "--watch"], "--dry-run launches nothing"),
        (["export", "--plan", "p.csv", "--bucket", BUCKET], "leave out --bucket"),
        (["export", "x", "--bucket", BUCKET, "--quick", "--output-format", "parquet"], "invalid choice"),
        (["jobs", "--state", "sleeping"], "invalid state"),
        (["jobs", "--timeout", "0", "--watch"], "must be positive"),
        (["jobs", "--output-format", "xml"], "invalid choice"),
    ],
)
def test_bad_arguments_exit_2_in_one_line(
    argv: list[str], says: str, env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_main(argv) == 2
    err = capsys.readouterr().err
    _assert_one_error_line(err)
    assert says in err


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "no column image_id, bucket_url, file_format, quick"),
        ("image_id,bucket_url,quick\nx,b:k.qcow2,false\n", "no column file_format"),
        ("image_id,bucket_url,file_format,quick\n", "no rows"),
        ("image_id,bucket_url,file_format,quick\n,b:k.qcow2,qcow2,false\n", "line 2: image_id is empty"),
        ("image_id,bucket_url,file_format,quick\nx,bucket-only,qcow2,false\n", "line 2: bucket_url must be BUCKET:KEY"),
        ("image_id,bucket_url,file_format,quick\nx,b:{id}.qcow2,qcow2,false\n", "has template fields"),
        ("image_id,bucket_url,file_format,quick\nx,b:k.qcow2,qcow2,maybe\n", "quick must be true or false"),
        ("image_id,bucket_url,file_format,quick\nx,b:k.zvhd2,vhd,true\n", "fast export writes ZVHD2"),
        ("image_id,bucket_url,file_format,quick\nx,b:k.qcow2,,false\n", "file_format is empty"),
        ("image_id,bucket_url,file_format,quick\nx,b:k.raw,raw,false\n", "file_format is 'raw'"),
        ("image_id,bucket_url,file_format,quick\nx,b:k.vhd,vhd,false,extra\n", "line 2: more cells than columns"),
        ("image_id,bucket_url,file_format,quick\nx,b:1.vhd,vhd,false\ny,b:2.vhd,vhd,0\nx,b:3.vhd,vhd,false\n",
         "line 4: image x is also on line 2"),
        ("image_id,bucket_url,file_format,quick\nx,b:1.vhd,vhd,false\ny,b:1.vhd,vhd,0\n",
         "line 3: target b:1.vhd is also on line 2"),
    ],
)  # fmt: skip
def test_bad_plan_files_exit_2_naming_the_problem(
    text: str, says: str, env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = tmp_path / "plan.csv"
    plan.write_text(text)
    assert run_main(["export", "--plan", str(plan)]) == 2  # refused before any connection
    err = capsys.readouterr().err
    _assert_one_error_line(err)
    assert says in err and str(plan) in err


def test_a_missing_plan_file_exits_2(env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_main(["export", "--plan", str(tmp_path / "nope.csv"), "--dry-run"]) == 2
    err = capsys.readouterr().err
    _assert_one_error_line(err)
    assert "No such file" in err


def test_an_unknown_image_id_exits_2(sim_line: str, env: dict[str, str]) -> None:
    result = _run("export", ["no-such-image", "--bucket", BUCKET, "--quick", "--sim", sim_line], env)
    assert result.returncode == 2
    _assert_one_error_line(result.stderr)
    assert "no such image: no-such-image" in result.stderr


# --- pieces: job bars, the names shared with the ledger, help and README ----------------


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_job_lines_show_percent_eta_and_stalled() -> None:
    line = job_line(Progress(3, "j", "web-01", "running", 35.0, 725.0, True))
    assert line.split() == ["3", "web-01", "[#######.............]", "35.0%", "running", "ETA", "12m05s", "STALLED"]
    done = job_line(Progress(4, "j", None, "verified", 100.0, None, False))
    assert done.split() == ["4", "j", "[####################]", "100.0%", "verified"]  # no ETA once final
    assert [duration_text(s) for s in (None, 42, 352, 11220, 187200)] == ["?", "42s", "5m52s", "3h07m", "2d04h"]


def test_job_bars_redraw_in_place_on_a_terminal_and_keep_notices_above() -> None:
    stream = _Terminal()
    with JobBars(stream, in_place=True, width=80, max_lines=3) as bars:
        bars.seed(
            [Progress(1, "a", "one", "submitted", None, None, False), Progress(2, "b", "two", "running", 10, 60, False)]
        )
        bars.update(Progress(1, "a", "one", "running", 50.0, 30.0, False))
        bars.print_above("a notice")
        bars.update(Progress(3, "c", "three", "verified", 100.0, None, False))
        bars.update(Progress(4, "d", "four", "failed", 20.0, None, False))
    text = stream.getvalue()
    assert text.count("\x1b[2F") >= 2 and "a notice\n" in text
    last = text.rsplit("\x1b[3F", 1)[1]  # the final block: live jobs first, then a summary of the rest
    lines = [part.strip() for part in last.replace("\x1b[2K", "").split("\n") if part.strip()]
    assert lines[0].startswith("1  one") and "50.0%" in lines[0] and "ETA 30s" in lines[0]
    assert lines[1].startswith("2  two")
    assert lines[2] == "... and 2 more jobs: 1 failed, 1 verified"
    assert all(len(line) < 80 for line in lines)


def test_job_bars_append_a_line_only_when_a_job_changes_without_a_terminal() -> None:
    stream = io.StringIO()
    bars = JobBars(stream, in_place=False)
    for percent in (1.0, 5.0, 12.0, 12.0):
        bars.update(Progress(1, "a", "one", "running", percent, None, False))
    bars.update(Progress(1, "a", "one", "running", 12.0, None, True))
    bars.close()
    bars.update(Progress(1, "a", "one", "verified", 100.0, None, False))  # closed: nothing more
    lines = stream.getvalue().splitlines()
    assert [line.split()[3] for line in lines] == ["1.0%", "12.0%", "12.0%"] and lines[-1].endswith("STALLED")
    assert "\x1b" not in stream.getvalue()


def test_help_texts_document_the_verbs(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_main(["export", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    needles = ("--plan FILE.csv", "--dry-run", "--ledger PATH", "--force", "--concurrency N", "--max-rate R", "--watch",
               "--key-template T", "--auto", "Exit codes: 0", "3 some selected image was refused")  # fmt: skip
    for needle in needles:
        assert needle in text, needle
    assert run_main(["jobs", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    for needle in ("--state S", "--watch", "--output-format {table,csv,json}", "STALLED", "130 Ctrl-C"):
        assert needle in text, needle


def test_the_readme_documents_export_and_jobs() -> None:
    verbs = next(a for a in build_parser()._actions if a.dest == "verb").choices
    assert verbs is not None and {"export", "jobs"} <= set(verbs)
    section = README.split("## Command line")[1].split("\n## ")[0]
    for needle in ("ims-nb export", "ims-nb jobs", "--dry-run", "--plan", "--watch", "--ledger", "IMS_NB_LEDGER",
                   "--force", "--state"):  # fmt: skip
        assert needle in section, needle
