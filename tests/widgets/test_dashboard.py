"""``ExportDashboard`` on the simulator: header and banner, the launch flow by clicks, charts redrawn after it."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import httpx
import pandas as pd
import pytest

from ims_nb import charts
from ims_nb.app import open_dashboard
from ims_nb.client import ImsClient
from ims_nb.exports.identity import Identity
from ims_nb.exports.ledger import ENV_SIM_LEDGER, Ledger
from ims_nb.sim import Simulator
from ims_nb.vocab import Target
from ims_nb.widgets import ExportDashboard, JobMonitor
from ims_nb.widgets.dashboard import CHART_DPI, CHART_SIZE, chart_png, connection_html, ledger_note
from tests.helpers import SimTime

PNG = b"\x89PNG\r\n\x1a\n"


def png_size(data: Any) -> tuple[int, int]:
    raw = bytes(data)
    assert raw.startswith(PNG)
    return int.from_bytes(raw[16:20], "big"), int.from_bytes(raw[20:24], "big")


def tick(dashboard: ExportDashboard, name: str) -> None:
    """Type a name into the picker's search box and tick the one row it leaves, as a user would."""
    picker = dashboard.picker
    picker._search.value = name
    assert picker._paging.value.endswith("· 1 matching"), picker._paging.value
    picker._rows.children[0].value = True


@pytest.fixture()
def watcher(connect_sim: Callable[..., ImsClient]) -> ImsClient:
    """A client whose ``to_async()`` works (``connect_sim`` records synchronously unless ``transport=None``)."""
    return connect_sim(transport=None)


def test_chart_png_draws_a_chart_on_its_own_figure(ledger: Ledger) -> None:
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    from ims_nb import jobs_frame

    data = chart_png(charts.plot_durations, jobs_frame(ledger))
    assert png_size(data) == (round(CHART_SIZE[0] * CHART_DPI), round(CHART_SIZE[1] * CHART_DPI))
    assert plt.get_fignums() == before  # no pyplot figure left behind (nothing for a notebook to show twice)


def test_the_launch_flow_by_clicks_redraws_the_charts_when_the_watch_ends(
    watcher: ImsClient, ledger: Ledger, sim_time: SimTime, exportable: list[dict[str, Any]], fresh_sim: Simulator
) -> None:
    images = watcher.images()
    refused = images[images["whole_image"].fillna(False).astype(bool)].sort_values("id")["name"].iloc[0]
    names = [exportable[0]["name"], exportable[1]["name"], refused]

    async def session() -> ExportDashboard:
        monitor = JobMonitor(watcher, ledger, clock=sim_time, sleep=sim_time.async_sleep)
        dashboard = ExportDashboard(watcher, ledger, images=images, monitor=monitor)
        empty = (bytes(dashboard._durations.value), bytes(dashboard._timeline.value))
        assert "0 export(s) in the ledger: 0 running, 0 finished" in dashboard._charts_note.value
        for name in names:
            tick(dashboard, name)
        assert list(dashboard.preview.verdicts()["verdict"]) == ["ok", "ok", "error"]
        dashboard.panel._launch.click()
        dashboard.panel._confirm.click()  # on this loop, as in a kernel: the monitor's task starts
        assert monitor.running
        assert "2 export(s) in the ledger: 2 running, 0 finished" in dashboard._charts_note.value  # at launch
        await monitor.wait()
        assert monitor.watches_ended == 1  # the charts were redrawn by the watch's end, not by a click
        assert (bytes(dashboard._durations.value), bytes(dashboard._timeline.value)) != empty
        return dashboard

    dashboard = asyncio.run(session())
    for image in (dashboard._durations, dashboard._timeline):
        assert png_size(image.value) == (720, 405)
    assert "2 export(s) in the ledger: 0 running, 2 finished" in dashboard._charts_note.value
    rules = dashboard.preview.verdicts()["rules"].tolist()
    assert rules[:2] == [["object-exists"], ["object-exists"]]  # planned again once the batch ended
    for widget in (dashboard, dashboard.picker, dashboard.panel, dashboard.preview, dashboard.monitor):
        assert widget.log_panel.errors == [], widget
    assert repr(dashboard) == "ExportDashboard(account cn-north-4: 200 images, 3 picked, 2 export(s) charted)"
    jobs = httpx.get(f"{fresh_sim.endpoint}/_sim/state").json()["jobs"]
    assert sorted(j["entities"]["image_name"] for j in jobs) == sorted(names[:2])  # exactly two exports


def test_refresh_redraws_from_the_ledger_and_its_errors_land_in_the_log_panel(
    watcher: ImsClient, tmp_path: Path
) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite")
    dashboard = ExportDashboard(watcher, ledger)
    refresh = dashboard._refresh
    assert "ims-nb-dashboard-refresh" in refresh._dom_classes
    refresh.click()
    assert dashboard.log_panel.errors == []
    ledger.close()
    refresh.click()
    [error] = dashboard.log_panel.errors
    assert error.startswith("refreshing the charts failed: unexpected ProgrammingError")


def test_on_an_account_the_header_says_where_and_the_banner_is_hidden(watcher: ImsClient, ledger: Ledger) -> None:
    dashboard = ExportDashboard(watcher, ledger)
    header = dashboard._header.value
    assert "connected to an account" in header
    for fact in ("cn-north-4", watcher.endpoints.ims, str(watcher.project_id), str(ledger.path)):
        assert fact in header, fact
    assert dashboard._banner.layout.display == "none"
    assert watcher.settings.credentials is not None and watcher.settings.credentials.sk not in header


def test_open_dashboard_on_the_simulator_shows_a_banner_instead_of_warnings(
    fresh_sim: Simulator, clean_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    monkeypatch.setenv("IMS_NB_SIM", json.dumps(fresh_sim.info.as_json_dict()))
    monkeypatch.setenv(ENV_SIM_LEDGER, str(tmp_path / "sim-ledger.sqlite"))
    with caplog.at_level(logging.WARNING, logger="ims_nb"):
        dashboard = open_dashboard()  # warnings are errors here: a SimulatorWarning would fail the test
    assert not [r for r in caplog.records if "SIMULATOR" in r.getMessage()]
    assert dashboard._banner.layout.display == "block" and "SIMULATOR: not a real account" in dashboard._banner.value
    assert "connected to the simulator" in dashboard._header.value and fresh_sim.endpoint in dashboard._banner.value
    assert str(tmp_path / "sim-ledger.sqlite") in dashboard._header.value
    assert repr(dashboard) == "ExportDashboard(SIMULATOR cn-north-4: 200 images, 0 picked, 0 export(s) charted)"
    logging.getLogger("ims_nb").warning("SIMULATOR: announced again")  # outside open_dashboard, nothing is silenced
    assert caplog.records[-1].getMessage() == "SIMULATOR: announced again"


def test_connection_html_escapes_what_it_shows(watcher: ImsClient, tmp_path: Path) -> None:
    with Ledger(tmp_path / "<b>odd</b>.sqlite") as odd:
        assert "<b>" not in connection_html(watcher, odd) and odd.url in connection_html(watcher, odd)
    shown = cast(Ledger, SimpleNamespace(url="postgresql://<b>odd</b>@db/ledger"))  # what a URL's user may hold
    assert "postgresql://&lt;b&gt;odd&lt;/b&gt;@db/ledger" in connection_html(watcher, shown)


def test_ledger_note_counts_running_and_finished_rows() -> None:
    jobs = pd.DataFrame({"state": ["running", "submitted", "verified", "failed", "refused", "running"],
                         "belongs_to": ["me", "me", "me", "me", "me", "elsewhere: AK OTHER"]})  # fmt: skip
    assert ledger_note(jobs.head(5)) == "5 export(s) in the ledger: 2 running, 3 finished"
    assert ledger_note(jobs) == "5 export(s) in the ledger: 2 running, 3 finished (and 1 of other accounts)"
    assert ledger_note(jobs.head(0)) == "0 export(s) in the ledger: 0 running, 0 finished"


def test_the_dashboard_counts_only_the_rows_of_the_clients_account(
    watcher: ImsClient, ledger: Ledger, exportable: list[dict[str, Any]]
) -> None:
    other = Ledger(ledger.path).bound_to(Identity("http://127.0.0.1:1", "cn-north-4", "other-project", "AK OTHER"))
    image = exportable[0]
    other.claim(image_id=image["id"], target=Target("ims-exports-cn-north-4", "x.qcow2"), image_name=image["name"],
                file_format="qcow2", quick=False, size_bytes=None, region="cn-north-4")  # fmt: skip
    assert len(Ledger(ledger.path).rows()) == 1
    dashboard = ExportDashboard(watcher, Ledger(ledger.path), images=watcher.images())  # given unbound
    assert "0 export(s) in the ledger: 0 running, 0 finished (and 1 of other accounts)" in dashboard._charts_note.value
