"""Fixtures the CLI tests share: a machine without credentials, and what a module's ``sim_line`` simulator holds.

Each module that uses ``sim_info`` defines its own module-scoped ``sim_line`` (the ``ims-nb sim`` options differ).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest

from ims_nb.vocab import GiB
from tests.cli.helpers import connect_line


@pytest.fixture()
def bare_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    """No HUAWEICLOUD_SDK_* variables, no $IMS_NB_* ledger or simulator variables, no $COLUMNS, a credentials file
    that does not exist (also in-process)."""
    for name in list(os.environ):
        if name.startswith("HUAWEICLOUD_SDK_") or name in (
            "IMS_NB_SIM",
            "IMS_NB_SIM_LEDGER",
            "IMS_NB_LEDGER",
            "COLUMNS",
        ):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HUAWEICLOUD_SDK_CREDENTIALS_FILE", str(tmp_path / "missing-credentials"))
    return dict(os.environ)


@pytest.fixture(scope="module")
def sim_info(sim_line: str) -> dict[str, str]:
    """The module's ``sim_line``, parsed."""
    info: dict[str, str] = json.loads(sim_line)
    return info


@pytest.fixture(scope="module")
def inventory(sim_info: dict[str, str]) -> pd.DataFrame:
    """Every image of the module's simulator, as the library lists them."""
    with connect_line(sim_info) as client:
        return client.images()


@pytest.fixture(scope="module")
def clean(inventory: pd.DataFrame, sim_info: dict[str, str]) -> pd.DataFrame:
    """Images no rule should refuse for a normal export to the region's Standard bucket (chosen by their columns)."""
    f = inventory
    ok = (
        (f["image_type"] == "private") & (f["status"] == "active") & (f["virtual_env_type"] == "FusionCompute")
        & ~f["whole_image"].astype(bool) & f["source_image_id"].isna() & f["product_code"].isna()
        & (f["owner"] == sim_info["project_id"]) & (f["size_bytes"] < 128 * GiB)
    )  # fmt: skip
    chosen = f[ok.fillna(False).astype(bool)]
    assert len(chosen) >= 3
    return chosen
