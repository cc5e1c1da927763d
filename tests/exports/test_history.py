"""The ETA model's fit over finished exports: leave-one-out predictions, worked by hand and against EtaModel."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

import ims_nb
from ims_nb.client import ImsClient
from ims_nb.errors import ConfigError
from ims_nb.exports.history import (
    FIT_COLUMNS,
    HISTORY_COLUMNS,
    EtaModel,
    Progress,
    eta_fit,
    eta_fit_summary,
    jobs_frame,
)
from ims_nb.exports.identity import Identity
from ims_nb.exports.launch import launch
from ims_nb.exports.leases import ENV_HOST
from ims_nb.exports.ledger import Ledger
from ims_nb.exports.watch import watch
from ims_nb.sim import Simulator
from ims_nb.vocab import GiB, Target
from tests.helpers import SimTime, exportable_plan


def history(*jobs: tuple[Any, ...]) -> pd.DataFrame:
    """A jobs frame from (format, size_gb, duration_s[, state]) tuples, row ids from 1."""
    rows = [(fmt, size, seconds, rest[0] if rest else "verified") for fmt, size, seconds, *rest in jobs]
    return pd.DataFrame({
        "row_id": pd.array(range(1, len(rows) + 1), dtype="Int64"),
        "image_name": pd.array([f"image-{n}" for n in range(1, len(rows) + 1)], dtype="string"),
        "format": pd.array([r[0] for r in rows], dtype="string"),
        "size_gb": [float(r[1]) for r in rows],
        "state": pd.array([r[3] for r in rows], dtype="string"),
        "duration_s": [float(r[2]) for r in rows],
    })  # fmt: skip


#: Three qcow2 jobs in the 16-64 GiB band, at 0.02, 0.03 and 0.01 GB/s.
BAND = [("qcow2", 20, 1000), ("qcow2", 30, 1000), ("qcow2", 40, 4000)]


def test_each_prediction_uses_the_median_rate_of_the_other_jobs_of_its_format_and_band() -> None:
    fit = eta_fit(history(*BAND))

    # 20 GB at median(0.03, 0.01) = 0.02 GB/s; 30 GB at median(0.02, 0.01) = 0.015; 40 GB at median(0.02, 0.03)
    assert list(fit["predicted_s"]) == pytest.approx([1000.0, 2000.0, 1600.0])
    assert list(fit["actual_s"]) == [1000.0, 1000.0, 4000.0]
    assert list(fit["error_pct"]) == pytest.approx([0.0, 100.0, -60.0])
    assert list(fit["row_id"]) == [1, 2, 3] and list(fit["image_name"]) == ["image-1", "image-2", "image-3"]
    assert list(fit["size_gb"]) == [20.0, 30.0, 40.0] and list(fit["format"]) == ["qcow2"] * 3


def test_with_an_odd_number_of_others_the_middle_rate_is_used() -> None:
    fit = eta_fit(history(*BAND, ("qcow2", 50, 1000)))  # a fourth job at 0.05 GB/s

    # 20 GB at median(0.03, 0.01, 0.05) = 0.03; 30 GB at 0.02; 40 GB at 0.03; 50 GB at 0.02
    assert list(fit["predicted_s"]) == pytest.approx([20 / 0.03, 30 / 0.02, 40 / 0.03, 50 / 0.02])


def test_no_prediction_without_another_finished_job_of_the_same_format_and_band() -> None:
    frame = history(
        *BAND,
        ("vmdk", 30, 1000),  # the only vmdk
        ("qcow2", 5, 100),  # the only qcow2 under 16 GiB
        ("qcow2", 10, 500, "failed"),  # not finished: left out, and no help to the one above
        ("qcow2", 10, 0, "verified"),  # no duration: left out
        ("qcow2", 10, float("nan"), "running"),
    )

    fit = eta_fit(frame)

    assert list(fit["row_id"]) == [1, 2, 3, 4, 5]
    assert fit["predicted_s"].isna().tolist() == [False, False, False, True, True]
    assert fit["error_pct"].isna().tolist() == [False, False, False, True, True]
    assert list(fit["predicted_s"].head(3)) == pytest.approx([1000.0, 2000.0, 1600.0])  # unchanged by the rest
    assert eta_fit_summary(fit) == {"jobs": 5, "predicted": 3, "median_abs_error_pct": pytest.approx(60.0)}


def test_predictions_agree_with_an_eta_model_built_without_each_job() -> None:
    rng = np.random.default_rng(7)
    count = 60
    frame = history(*zip(
        rng.choice(["qcow2", "vmdk", "vhd"], count), rng.choice([3.0, 12.0, 20.0, 40.0, 90.0, 200.0], count),
        rng.uniform(60, 9000, count).round(), rng.choice(["verified", "succeeded", "failed"], count), strict=True,
    ))  # fmt: skip
    frame.loc[[3, 9], "format"] = pd.NA

    fit = eta_fit(frame)

    finished = frame[frame["state"] != "failed"]
    assert list(fit["row_id"]) == list(finished["row_id"])
    for position, (index, row) in enumerate(finished.iterrows()):
        eta = EtaModel(frame.drop(index)).eta(file_format="" if pd.isna(row["format"]) else row["format"],
                                              size_gb=row["size_gb"], percent=0.0, elapsed=None)  # fmt: skip
        predicted = fit["predicted_s"].iloc[position]
        assert (eta is None and math.isnan(predicted)) or eta == pytest.approx(predicted, rel=1e-12)
    assert fit["predicted_s"].notna().sum() > count / 2


def test_an_empty_history_gives_the_typed_empty_frame(tmp_path: Path) -> None:
    with Ledger(tmp_path / "l.db") as ledger:
        fit = eta_fit(jobs_frame(ledger))

    assert fit.empty
    assert dict(fit.dtypes.astype(str)) == dict(FIT_COLUMNS)
    assert eta_fit_summary(fit) == {"jobs": 0, "predicted": 0, "median_abs_error_pct": None}


def test_a_frame_that_is_not_a_jobs_frame_is_refused() -> None:
    with pytest.raises(ConfigError, match="missing columns: state, duration_s"):
        eta_fit(history(*BAND).drop(columns=["state", "duration_s"]))


# --- a team's history: who launched what, and ETAs from everyone's jobs (issue 15, item 4) ----------------------


@pytest.fixture(scope="module")
def team_sim() -> Iterator[Simulator]:
    """A simulator whose account has a second operator, ``ims-operator-2`` (manual clock)."""
    with Simulator(seed=0, images=60, manual_clock=True, team=1) as simulator:
        yield simulator


def member(sim: Simulator, name: str) -> ImsClient:
    user = next(u for u in httpx.get(f"{sim.endpoint}/_sim/credentials").json()["users"] if u["name"] == name)
    return ims_nb.connect(ak=user["ak"], sk=user["sk"], project_id=sim.info.project_id, endpoint=sim.endpoint)


def test_user_bs_eta_comes_from_user_as_finished_jobs(
    team_sim: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim_time = SimTime(httpx.Client(base_url=f"{team_sim.endpoint}/_sim"))
    watching = {"clock": sim_time, "sleep": sim_time.sleep, "interval": 30.0, "max_interval": 60.0, "max_rate": 1e3}
    ledger = Ledger(tmp_path / "team.sqlite")
    alice, bob = member(team_sim, "ims-operator"), member(team_sim, "ims-operator-2")
    small = exportable_plan(alice, key_template="team/{id8}.{ext}").query("size_gb < 16").reset_index(drop=True)
    monkeypatch.setenv(ENV_HOST, "host-a")
    launch(small.head(4), client=alice, ledger=ledger, max_rate=1000)
    watch(ledger, client=alice, **watching)
    alices = jobs_frame(ledger, user="ims-operator")
    assert len(alices) == 4 and set(alices["launched_host"]) == {"host-a"}
    model = EtaModel(alices)  # Alice's finished jobs only
    assert ("qcow2", 0) in model.rates

    monkeypatch.setenv(ENV_HOST, "host-b")
    launch(small.iloc[4:6], client=bob, ledger=ledger, max_rate=1000)
    seen: list[Progress] = []
    watch(ledger, client=bob, on_progress=seen.append, **watching)

    bobs = jobs_frame(ledger, user="ims-operator-2", host="host-b").set_index("row_id")
    assert len(bobs) == 2 and set(bobs["launched_by"]) == {f"AK {bob.settings.credentials.ak}"}  # type: ignore[union-attr]
    assert jobs_frame(ledger, user="ims-operator-2", host="host-a").empty
    for report in seen[:2]:  # Bob's first look: no pace of his own yet, so the ETA is Alice's history's
        assert report.row_id in bobs.index
        assert report.eta_seconds == pytest.approx(bobs.loc[report.row_id, "size_gb"] / model.rates[("qcow2", 0)])
    for closing in (ledger, alice, bob):
        closing.close()


def test_jobs_frame_shows_who_launched_each_job_and_filters_by_user_and_host(tmp_path: Path) -> None:
    endpoint = "https://ims.cn-north-4.myhuaweicloud.com"
    with Ledger(tmp_path / "who.sqlite") as ledger:
        for n, (user, host) in enumerate([("ann", "h1"), ("ann", "h2"), ("bo", "h1"), (None, "h1")]):
            who = Identity(endpoint, "cn-north-4", "p1", f"AK KEY{n}", user=user, host=host)
            ledger.bound_to(who).claim(image_id=f"i{n}", target=Target("b", f"k{n}"), image_name=f"n{n}",
                                       file_format="qcow2", quick=False, size_bytes=GiB, region="r")  # fmt: skip
        every = jobs_frame(ledger)
        assert list(every["launched_user"].fillna("-")) == ["ann", "ann", "bo", "-"]
        assert list(every["launched_by"]) == ["AK KEY0", "AK KEY1", "AK KEY2", "AK KEY3"]
        assert list(jobs_frame(ledger, user="ann")["launched_host"]) == ["h1", "h2"]
        assert list(jobs_frame(ledger, host="h1")["image_id"]) == ["i0", "i2", "i3"]
        assert list(jobs_frame(ledger, user="ann", host="h1")["image_id"]) == ["i0"]
        assert list(jobs_frame(ledger, user="nobody").columns) == list(HISTORY_COLUMNS)
