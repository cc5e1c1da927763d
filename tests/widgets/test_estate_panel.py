"""The panel, monitor and dashboard on an estate: a 3-region simulator, picks in two regions, launched and watched."""

from __future__ import annotations

import asyncio
import html
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

import ims_nb
from ims_nb import selection
from ims_nb.estate import Estate
from ims_nb.exports.ledger import Ledger
from ims_nb.sim import Simulator
from ims_nb.targets import BucketChoice, region_bucket_choices
from ims_nb.widgets import ExportDashboard, ExportPanel, ImagePicker, JobMonitor, bucket_choice
from ims_nb.widgets.bucket_choice import NO_BUCKET_IN, RegionBuckets
from tests.helpers import SimTime

pytestmark = pytest.mark.usefixtures("clean_env")

REGIONS = ("cn-north-4", "ap-southeast-1", "ap-southeast-3")
PICKED_IN = ("ap-southeast-1", "cn-north-4")
TEMPLATE = "images/{region}/{project}/{name}-{id8}.{ext}"


@pytest.fixture()
def simulator() -> Iterator[Simulator]:
    with Simulator(regions=REGIONS, seed=0, images=60, manual_clock=True) as running:
        yield running


@pytest.fixture()
def estate(simulator: Simulator) -> Iterator[Estate]:
    with ims_nb.connect_estate(simulator=simulator) as connected:
        yield connected


@pytest.fixture()
def frame(estate: Estate) -> pd.DataFrame:
    return estate.images()


@pytest.fixture()
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    with Ledger(tmp_path / "ledger.sqlite") as opened:
        yield opened


@pytest.fixture()
def sim_time(simulator: Simulator) -> Iterator[SimTime]:
    """The manual clock (one for every region), moved through the first region's control plane."""
    with httpx.Client(base_url=f"{simulator.endpoint}/_sim") as control:
        yield SimTime(control)


def endpoint_of(simulator: Simulator, region: str) -> str:
    regions = simulator.info.regions
    assert regions is not None
    return regions[region]["endpoint"]


def sim_jobs(simulator: Simulator, region: str) -> list[dict[str, Any]]:
    return list(httpx.get(f"{endpoint_of(simulator, region)}/_sim/state").json()["jobs"])


def small_exportable(frame: pd.DataFrame, region: str, count: int) -> list[str]:
    """The smallest exportable images of a region's own project (normal exports)."""
    mine = frame[(frame["project_name"] == region) & selection.exportability(frame).to_numpy()]
    return mine.sort_values(["size_bytes", "id"])["id"].head(count).tolist()


def dropdowns(panel: ExportPanel) -> dict[str, Any]:
    return {d.description: d for d in panel._bucket.children}


def test_picks_in_two_regions_are_planned_launched_and_watched_in_their_own_regions(
    simulator: Simulator, estate: Estate, frame: pd.DataFrame, ledger: Ledger, sim_time: SimTime
) -> None:
    ids = small_exportable(frame, PICKED_IN[0], 2) + small_exportable(frame, PICKED_IN[1], 1)
    region_of = dict(zip(frame["id"], frame["region"], strict=False))

    async def session() -> pd.DataFrame:
        picker = ImagePicker(images=frame)
        monitor = JobMonitor(estate, ledger, clock=sim_time, sleep=sim_time.async_sleep)
        panel = ExportPanel(estate, ledger, picker=picker, monitor=monitor, key_template=TEMPLATE)
        assert isinstance(panel._bucket, RegionBuckets) and panel._bucket.children == ()
        picker.pick(*ids)
        shown = dropdowns(panel)
        assert list(shown) == [f"bucket in {r}" for r in sorted(PICKED_IN)]
        for region, dropdown in zip(sorted(PICKED_IN), shown.values(), strict=True):
            assert dropdown.value == f"ims-exports-{region}"  # usable ones first: the region's Standard bucket
            assert dropdown.options[-1][0].endswith(f"not {region}") or "not Standard" in dropdown.options[-1][0]
        plan = panel.review.plan
        assert plan["exportable"].all()
        assert (plan["bucket"] == "ims-exports-" + plan["region"]).all()
        prefixes = "images/" + plan["region"] + "/" + plan["region"] + "/"  # {region}/{project}: the main project
        assert all(key.startswith(p) for key, p in zip(plan["object_key"], prefixes, strict=True))
        panel._launch.click()
        assert "Launch 3 export(s) to bucket <b>ims-exports-ap-southeast-1 (in ap-southeast-1), " in (
            panel._question.value
        )
        panel._confirm.click()  # on this loop, as in a kernel: the monitor's task starts
        assert monitor.running and len(panel.launched) == 3
        done = await monitor.wait()
        for widget in (picker, panel, monitor):
            assert widget.log_panel.errors == [], widget
        verdicts = panel._plan.value
        assert verdicts.count("ims-nb-verdict-exported") == 3 and "exportable" not in verdicts
        assert set(panel.review.decisions["state"]) == {"verified"}
        return done

    done = asyncio.run(session())
    assert sorted(done["image_id"]) == sorted(ids)
    assert set(done["status"]) == {"SUCCESS"} and set(done["state"]) == {"verified"}
    names = dict(zip(frame["id"], frame["name"], strict=False))
    for region in REGIONS:
        jobs = sim_jobs(simulator, region)
        expected = sorted(names[i] for i in ids if region_of[i] == region)
        assert sorted(j["entities"]["image_name"] for j in jobs) == expected, region  # one job per image, its region


def test_a_region_without_a_usable_bucket_says_so_and_its_rows_are_refused(
    estate: Estate, frame: pd.DataFrame, ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    region = "ap-southeast-1"

    def only_unusable_there(clients: Any, where: str) -> list[BucketChoice]:
        found = region_bucket_choices(clients, where)
        return [c for c in found if c.problem is not None] if where == region else found

    monkeypatch.setattr(bucket_choice, "region_bucket_choices", only_unusable_there)
    ids = small_exportable(frame, region, 1) + small_exportable(frame, "cn-north-4", 1)
    panel = ExportPanel(estate, ledger, images=frame.set_index("id").loc[ids].reset_index())
    reason = NO_BUCKET_IN.format(region=region)
    bucketless = dropdowns(panel)[f"bucket in {region}"]
    assert bucketless.disabled and bucketless.options == ((reason, None),) and bucketless.value is None
    assert panel.bucket == {region: None, "cn-north-4": "ims-exports-cn-north-4"}
    plan = panel.review.plan.set_index("region")
    assert plan.loc[region, "blocking"] == [reason] and not plan.loc[region, "exportable"]
    assert bool(plan.loc["cn-north-4", "exportable"])
    assert f"refused: {html.escape(reason)}" in panel._plan.value
    assert reason in panel.review.violations["message"].tolist()
    assert panel.review.decisions["reason"].tolist()[0] == f"preflight: {reason}"  # the ledger refuses it so
    assert "Launch 1 export(s)" in panel.ask() and "1 refused image(s) will be skipped" in panel.ask()


def test_the_dashboard_on_an_estate_names_its_regions_and_projects(
    estate: Estate, frame: pd.DataFrame, ledger: Ledger
) -> None:
    dashboard = ExportDashboard(estate, ledger, images=frame)
    header = dashboard._header.value
    assert "connected to a simulator estate" in header
    assert all(region in header for region in REGIONS) and "cn-north-4_dev (cn-north-4)" in header
    assert "endpoint" not in header
    assert dashboard._banner.layout.display == "block"
    assert isinstance(dashboard.panel._bucket, RegionBuckets)
    assert repr(dashboard).startswith(f"ExportDashboard(SIMULATOR {','.join(sorted(REGIONS))}: ")
    assert dashboard.refresh_charts().empty
