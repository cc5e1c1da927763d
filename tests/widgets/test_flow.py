"""The export workflow by clicks, as in 02_export.ipynb: pick three (one refused), see why, launch, watch to the end."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pandas as pd

from ims_nb.client import ImsClient
from ims_nb.exports.ledger import Ledger
from ims_nb.sim import Simulator
from ims_nb.widgets import ExportPanel, ImagePicker, JobMonitor, ViolationsPreview
from tests.helpers import SimTime


def tick(picker: ImagePicker, name: str) -> None:
    """Type a name into the search box and tick the one row it leaves, as a user would."""
    picker._search.value = name
    assert picker._paging.value.endswith("· 1 matching"), picker._paging.value
    picker._rows.children[0].value = True


def test_pick_preview_launch_and_watch_by_clicks(
    connect_sim: Callable[..., ImsClient], sim_time: SimTime, exportable: list[dict[str, Any]], tmp_path: Path,
    fresh_sim: Simulator,
) -> None:  # fmt: skip
    client = connect_sim(transport=None)  # the monitor's async twin needs a transport it can use
    images = client.images()
    refused = images[images["whole_image"].fillna(False).astype(bool)].sort_values("id")["name"].iloc[0]
    names = [exportable[0]["name"], exportable[1]["name"], refused]

    async def session() -> pd.DataFrame:
        with Ledger(tmp_path / "ledger.sqlite") as ledger:
            picker = ImagePicker(client, images=images)
            monitor = JobMonitor(client, ledger, clock=sim_time, sleep=sim_time.async_sleep)
            panel = ExportPanel(client, ledger, picker=picker, monitor=monitor)
            preview = ViolationsPreview(panel)
            for name in names:
                tick(picker, name)
            assert picker.selected["name"].tolist() == names
            assert list(preview.verdicts()["verdict"]) == ["ok", "ok", "error"]
            assert "full-ecs-image" in preview._table.value
            panel._launch.click()
            assert "Launch 2 export(s)" in panel._question.value
            panel._confirm.click()  # on this loop, as in a kernel: the monitor's task starts
            assert monitor.running
            done = await monitor.wait()
            for widget in (picker, panel, preview, monitor):
                assert widget.log_panel.errors == [], widget
            assert repr(monitor) == "JobMonitor(2 exports: 2 verified)"
            return done

    done = asyncio.run(session())
    assert sorted(done["image_name"]) == sorted(names[:2])
    assert set(done["status"]) == {"SUCCESS"} and set(done["process_percent"]) == {100.0}
    jobs = httpx.get(f"{fresh_sim.endpoint}/_sim/state").json()["jobs"]
    exported = {j["entities"]["image_name"] for j in jobs}
    assert len(jobs) == 2 and exported == set(names[:2])  # exactly two exports; the refused one was never sent
