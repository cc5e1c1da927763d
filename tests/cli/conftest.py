"""Fixtures the CLI tests share: a machine without credentials, and what a module's ``sim_line`` simulator holds.

Each module that uses ``sim_info`` defines its own module-scoped ``sim_line`` (the ``ims-nb sim`` options differ).
The estate modules share ``estate_sim``: three regions (a sub-project in the first), one per module.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from ims_nb.sim import Simulator
from ims_nb.vocab import GiB
from tests.cli.helpers import connect_line

#: The regions of ``estate_sim``; the first has the sub-project ``cn-north-4_dev``.
ESTATE_REGIONS = ("cn-north-4", "ap-southeast-1", "ap-southeast-3")


@pytest.fixture(scope="module")
def estate_sim() -> Iterator[Simulator]:
    """A three-region simulator of the module's own, with a fast clock (an export job ends within a second)."""
    with Simulator(regions=ESTATE_REGIONS, seed=0, images=30, time_scale=100000.0) as simulator:
        yield simulator


@pytest.fixture(scope="module")
def estate_sim_line(estate_sim: Simulator) -> str:
    """``estate_sim``'s JSON line, as ``--sim`` takes it."""
    return json.dumps(estate_sim.info.line())


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
