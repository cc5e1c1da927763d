"""The export panel and the verdicts preview say what is true: of the picks, the plan, the template and the jobs."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from ims_nb.client import ImsClient
from ims_nb.exports.ledger import Ledger
from ims_nb.widgets import ExportPanel, ImagePicker, JobMonitor, ViolationsPreview
from ims_nb.widgets.log import LogPanel, reports_errors
from ims_nb.widgets.panel import NOTHING
from tests.helpers import SimTime

RED = "#b00020"


@pytest.fixture()
def images(sim_client: ImsClient) -> pd.DataFrame:
    return sim_client.images()


@pytest.fixture()
def three(exportable: list[dict[str, Any]], images: pd.DataFrame) -> list[str]:
    """Ids of two exportable images and one full-ECS image, which no export accepts."""
    whole = images[images["whole_image"].fillna(False).astype(bool)].sort_values("id")["id"].iloc[0]
    return [exportable[0]["id"], exportable[1]["id"], whole]


def test_a_report_about_nothing_goes_once_images_are_picked(sim_client: ImsClient, images: pd.DataFrame,
                                                            three: list[str], ledger: Ledger) -> None:  # fmt: skip
    picker = ImagePicker(sim_client, images=images)
    panel = ExportPanel(sim_client, ledger, picker=picker)
    assert panel.launch().empty and NOTHING in panel._report.value  # the headless cell, nothing picked
    picker.pick(*three[:2])
    assert not panel._launch.disabled and panel._report.value == ""
    panel.launch()
    assert "launched 2" in panel._report.value
    picker.pick(three[2])  # a report of what was launched stays: it is history, not a claim about the picks
    assert "launched 2" in panel._report.value and "Nothing" not in panel._report.value


def test_launched_images_show_as_exporting_then_exported_with_their_job_and_target(
    connect_sim: Callable[..., ImsClient], sim_time: SimTime, three: list[str], images: pd.DataFrame, tmp_path: Path
) -> None:
    client = connect_sim(transport=None)  # the monitor's async twin needs a transport it can use

    async def session() -> None:
        with Ledger(tmp_path / "ledger.sqlite") as ledger:
            picker = ImagePicker(client, images=images)
            monitor = JobMonitor(client, ledger, clock=sim_time, sleep=sim_time.async_sleep)
            panel = ExportPanel(client, ledger, picker=picker, monitor=monitor)
            preview = ViolationsPreview(panel)
            picker.pick(*three)
            panel._launch.click()
            panel._confirm.click()
            jobs = {r["image_id"]: r["job_id"] for r in ledger.rows()}
            assert_tracked(panel, preview, "exporting", jobs)
            assert "fix: wait for that job" not in preview._table.value
            await monitor.wait()  # no refresh by hand: the panel follows the monitor's states
            assert set(monitor.states.values()) == {"verified"}
            assert_tracked(panel, preview, "exported", jobs)
            assert "object-exists" not in preview._table.value and "already-exporting" not in panel._plan.value
            assert panel._launch.disabled  # nothing left to launch: the third is refused
            for widget in (picker, panel, preview, monitor):
                assert widget.log_panel.errors == [], widget

    asyncio.run(session())


def assert_tracked(panel: ExportPanel, preview: ViolationsPreview, verdict: str, jobs: dict[str, str]) -> None:
    """The two launched images show ``verdict`` with their job and target everywhere; the third stays refused."""
    verdicts = preview.verdicts()
    assert list(verdicts["verdict"]) == [verdict, verdict, "error"]
    assert list(verdicts["job_id"][:2]) == [jobs[i] for i in verdicts["image_id"][:2]]
    table, summary, plan = preview._table.value, preview._summary.value, panel._plan.value
    assert table.count(f"ims-nb-verdict-{verdict}") == 2 and table.count("ims-nb-verdict-error") == 1
    assert f"2 {verdict}" in summary and "1 refused" in summary
    for image_id, target in zip(verdicts["image_id"][:2], verdicts["target"][:2], strict=True):
        assert f"{verdict}</b> (job {jobs[image_id]} to {target})" in table, table
        assert f"{verdict} (job {jobs[image_id]} to {target})" in plan
    assert plan.count("refused") == 1 and table.count(RED) == 2  # the full-ECS image: its verdict and its rule
    assert repr(preview) == f"ViolationsPreview(3 images: 0 exportable, 1 refused, 2 {verdict})"


@pytest.mark.parametrize(("template", "named"), [("{nme}.{ext}", "nme"), ("{name.{ext}", "{")])
def test_a_mistyped_template_says_so_everywhere_and_its_error_goes_when_fixed(
    sim_client: ImsClient, images: pd.DataFrame, three: list[str], ledger: Ledger, template: str, named: str
) -> None:
    picker = ImagePicker(sim_client, images=images)
    panel = ExportPanel(sim_client, ledger, picker=picker)
    preview = ViolationsPreview(panel)
    picker.pick(*three)
    panel._launch.click()
    panel._cancel.click()  # an entry of another action, which stays
    panel._template.value = template
    assert panel.review is None and panel._launch.disabled and named in panel.problem
    assert "cannot plan the export of 3 picked image(s)" in panel._plan.value and named in panel._plan.value
    assert "pick images" not in panel._plan.value
    summary = preview._summary.value
    assert "3 image(s) picked" in summary and "cannot judge them until the target is fixed" in summary
    assert "no images picked" not in summary and named in summary
    assert len(panel.log_panel.errors) == 1 and panel.log_panel.errors[0].startswith("planning failed")
    panel._template.value = "{name}-{id8}.{ext}"
    assert panel.problem == "" and panel.log_panel.errors == []
    assert [e.text for e in panel.log_panel.entries] == ["launch cancelled: nothing was sent"]
    assert "cannot" not in preview._summary.value and list(preview.verdicts()["verdict"]) == ["ok", "ok", "error"]
    panel.launch()
    assert "launched 2" in panel._report.value and panel.log_panel.errors == []


class Owner:
    def __init__(self) -> None:
        self.log_panel = LogPanel()

    @reports_errors("planning", clears=True)
    def plan(self, ok: bool) -> str:
        if not ok:
            raise ValueError("bad template")
        return "planned"

    @reports_errors("launching")
    def launch(self) -> None:
        raise RuntimeError("no")


def test_a_clearing_handler_forgets_only_its_own_errors_and_only_on_success() -> None:
    owner = Owner()
    owner.plan(False)
    owner.launch()
    owner.log_panel.info("a note")
    assert len(owner.log_panel.errors) == 2
    assert owner.plan(True) == "planned"
    assert [e.text for e in owner.log_panel.entries][1:] == ["a note"]
    assert owner.log_panel.errors[0].startswith("launching failed") and len(owner.log_panel.errors) == 1
    owner.launch()
    assert len(owner.log_panel.errors) == 2  # a handler without ``clears`` keeps its errors


def test_the_bucket_and_key_fields_are_wide_enough_for_their_longest_label(sim_client: ImsClient,
                                                                           ledger: Ledger) -> None:  # fmt: skip
    panel = ExportPanel(sim_client, ledger)
    longest = max(len(label) for label, _ in panel._bucket.options)
    assert any("(STANDARD" in label.upper() for label, _ in panel._bucket.options)
    for field in (panel._bucket, panel._template):
        assert field.style.description_width == "initial"  # "bucket", "object key" never cut
        assert field.layout.width == "auto"
    assert int(panel._bucket.layout.min_width.removesuffix("ch")) > longest
