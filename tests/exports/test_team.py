"""The team proof, reduced: 4 launcher processes on overlapping plans, one PostgreSQL ledger, a SIGKILL, a restart.

The full drill (4 plans of 200 over 400 images) is ``make soak``; this one runs the same script with plans of 40
over 80 images: each image in two plans, host-1 SIGKILLed 30 % into its plan, PostgreSQL down for 2 s once
half the images are in the ledger, then one reconcile and one watch. About a minute on a busy 2-CPU machine.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from typing import Any

import pandas as pd
import pytest

from benchmarks.drills import team
from tests.pg import find_bindir, require_bindir

IMAGES, PLAN = 80, 40


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    require_bindir(find_bindir(), os.environ)
    output = tmp_path_factory.mktemp("team") / "team.json"
    argv = ["--exportable", str(IMAGES), "--plan-size", str(PLAN), "--max-rate", "12", "--output", str(output)]
    status = team.main(argv)
    loaded: dict[str, Any] = json.loads(output.read_text())
    assert status == (0 if team.passed(loaded) else 1)
    return loaded


@pytest.mark.timeout(300)
def test_each_image_is_exported_once_and_has_one_row(results: dict[str, Any]) -> None:
    assert results["images_planned"] == IMAGES
    assert results["duplicate_jobs"] == results["duplicate_rows"] == results["unplanned_jobs"] == 0, results
    assert results["never_exported"] == 0
    assert results["jobs"] - results["resent_after_failure"] == results["ledger_rows"] == IMAGES


def test_nothing_is_left_doubtful_after_the_kill_the_restart_and_the_watch(results: dict[str, Any]) -> None:
    assert results["killed"]["claimed_rows"] > 0
    assert 0 < results["restart"]["ledger_rows_then"] <= IMAGES
    assert results["launcher_exit_codes"] == [0, 0, 0], results["launcher_failures"]  # they rode out the restart
    assert results["doubtful"] == results["live"] == 0
    assert set(results["states"]) <= {"verified", "failed"}
    assert team.passed(results)


def test_a_second_job_counts_only_after_the_first_failed() -> None:
    def job(image: str, begin: str, end: str | None, status: str) -> dict[str, Any]:
        return {"entities": {"image_id": image}, "begin_time": begin, "end_time": end, "status": status}

    jobs = [job("a", "1", "2", "FAIL"), job("a", "3", None, "RUNNING"), job("b", "1", None, "RUNNING"),
            job("b", "2", None, "RUNNING"), job("c", "1", "2", "SUCCESS"), job("c", "3", "4", "SUCCESS")]  # fmt: skip
    assert team.resent(jobs) == 1
    figures = team.judge(["a", "b", "c", "d"], jobs, [{"image_id": i, "state": "verified"} for i in "abcc"])
    assert (figures["duplicate_jobs"], figures["duplicate_rows"], figures["never_exported"]) == (2, 1, 1)


def test_the_windows_overlap_so_each_image_is_in_two_plans() -> None:
    plan = pd.DataFrame({"image_id": [f"img-{n}" for n in range(8)]})
    windows = team.cut(plan, 4, 4)
    assert [list(w["image_id"].str[4:].astype(int)) for w in windows] == [[0, 1, 2, 3], [2, 3, 4, 5], [4, 5, 6, 7],
                                                                           [6, 7, 0, 1]]  # fmt: skip
    assert set(Counter(i for w in windows for i in w["image_id"]).values()) == {2}
