"""The ETA model's fit over finished exports: leave-one-out predictions, worked by hand and against EtaModel."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from ims_nb.errors import ConfigError
from ims_nb.exports.history import FIT_COLUMNS, EtaModel, eta_fit, eta_fit_summary, jobs_frame
from ims_nb.exports.ledger import Ledger


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
