"""The fast conversion of a listing (chunked reads, Arrow-built columns) gives the frame pandas alone gives."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest

import ims_nb
from ims_nb import frame_columns, frames
from ims_nb.frames import images_frame, job_records_frame
from ims_nb.sim import Simulator

LISTING_SIZE = 2_000


@pytest.fixture(scope="module")
def listing() -> Iterator[tuple[list[dict[str, Any]], pd.DataFrame]]:
    """A 2,000-image listing of a seed-0 simulator: its records, and ``client.images()``."""
    with Simulator(seed=0, images=LISTING_SIZE, manual_clock=True) as sim:
        info = sim.info
        options = {"ak": info.ak, "sk": info.sk, "project_id": info.project_id, "endpoint": info.endpoint}
        with ims_nb.connect(info.region, **options) as client:
            yield list(client.iter_images()), client.images()


def _pandas_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Convert as before Arrow was used: every column through pandas' own constructors (the reference)."""
    monkeypatch.setattr(frame_columns, "_arrow", lambda: None)


@pytest.mark.parametrize("raw", [False, True])
def test_a_listing_frame_equals_the_pandas_only_conversion(
    listing: tuple[list[dict[str, Any]], pd.DataFrame], monkeypatch: pytest.MonkeyPatch, raw: bool
) -> None:
    records, fast = listing
    assert len(fast) == LISTING_SIZE
    assert frame_columns._arrow() is not None  # the fast path is the one under test
    fast_raw = images_frame(iter(records), raw=raw)
    _pandas_only(monkeypatch)
    reference = images_frame(records, raw=raw)
    pd.testing.assert_frame_equal(fast_raw, reference, check_exact=True)
    pd.testing.assert_frame_equal(fast, reference.drop(columns=[frames.RAW_COLUMN], errors="ignore"))


def test_the_listing_reaches_the_blank_and_defaulted_text(listing: tuple[list[dict[str, Any]], pd.DataFrame]) -> None:
    records, frame = listing
    assert any(record.get("__backup_id") == "" for record in records)  # "" on the wire, <NA> in the frame
    assert frame["backup_id"].isna().any() and frame["kms_key_id"].isna().any()
    assert not frame["enterprise_project_id"].isna().any() and not frame["architecture"].isna().any()


#: Values Arrow would read otherwise than pandas (it decodes bytearrays, takes numpy booleans): pandas converts.
ODD_VALUES = [
    ("name", bytearray(b"q"), "bytearray(b'q')"),
    ("name", np.str_("np"), "np"),
    ("name", b"bytes", "bytes"),
    ("protected", np.True_, pd.NA),
    ("__whole_image", 1, True),
    ("__backup_id", 7, "7"),
    ("architecture", "", "x86"),
]


@pytest.mark.parametrize(("field", "value", "expected"), ODD_VALUES, ids=lambda v: repr(v))
def test_values_arrow_reads_otherwise_keep_the_pandas_conversion(
    monkeypatch: pytest.MonkeyPatch, field: str, value: Any, expected: Any
) -> None:
    records = [{"id": "a", field: value}, {"id": "b", field: None}]
    column = {"__whole_image": "whole_image", "__backup_id": "backup_id"}.get(field, field)
    fast = images_frame(records)
    assert fast[column].iloc[0] is expected or fast[column].iloc[0] == expected
    _pandas_only(monkeypatch)
    pd.testing.assert_frame_equal(fast, images_frame(records))


def test_a_bad_record_after_the_first_chunk_is_named_by_its_position() -> None:
    records: list[Any] = [{"id": str(n)} for n in range(frames._CHUNK * 2 + 10)]
    records[frames._CHUNK + 3] = "not a record"
    with pytest.raises(TypeError, match=rf"record {frames._CHUNK + 3} is a str"):
        images_frame(iter(records))


def test_job_frames_equal_the_pandas_only_conversion(monkeypatch: pytest.MonkeyPatch) -> None:
    records = [
        {"job_id": "j1", "status": "SUCCESS", "job_type": "exportImage", "begin_time": "2024-01-01T00:00:00Z",
         "end_time": "2024-01-01T00:10:00Z", "error_code": None, "fail_reason": "", "entities": {"image_id": "i1"}},
        {"job_id": "j2", "status": "FAIL", "job_type": "exportImage", "begin_time": "2024-01-01T00:00:00Z",
         "end_time": None, "error_code": "IMG.0001", "fail_reason": "no", "entities": {"process_percent": 0.5}},
    ]  # fmt: skip
    fast = job_records_frame(records)
    _pandas_only(monkeypatch)
    pd.testing.assert_frame_equal(fast, job_records_frame(records))
