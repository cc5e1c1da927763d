"""ExportPanel and ViolationsPreview on a simulator-backed client: plan, confirm, launch once, report, explain."""

from __future__ import annotations

from typing import Any

import httpx
import pandas as pd
import pytest

from ims_nb.client import ImsClient
from ims_nb.exports.ledger import Ledger
from ims_nb.sim import Simulator
from ims_nb.widgets import ExportPanel, ViolationsPreview
from tests.helpers import RequestLog

USABLE = "ims-exports-cn-north-4"


@pytest.fixture()
def three(sim_client: ImsClient, exportable: list[dict[str, Any]]) -> pd.DataFrame:
    """Two exportable images (the smallest) and one full-ECS image, which no export accepts."""
    images = sim_client.images()
    whole = images[images["whole_image"].fillna(False).astype(bool)].sort_values("id").head(1)
    good = images[images["id"].isin([i["id"] for i in exportable[:2]])]
    return pd.concat([good, whole], ignore_index=True)


def export_posts(sent: RequestLog) -> list[str]:
    return [r.url.path for r in sent.requests if r.method == "POST" and r.url.path.endswith("/file")]


def sim_jobs(sim: Simulator) -> list[dict[str, Any]]:
    return list(httpx.get(f"{sim.endpoint}/_sim/state").json()["jobs"])


def test_the_panel_plans_the_images_for_the_first_usable_bucket(sim_client: ImsClient, three: pd.DataFrame,
                                                                 ledger: Ledger) -> None:  # fmt: skip
    panel = ExportPanel(sim_client, ledger, images=three)
    assert panel.bucket == USABLE
    labels = [label for label, _ in panel._bucket.options]
    assert labels[0].startswith(USABLE) and any("not Standard" in label for label in labels)
    plan = panel.review.plan
    assert list(plan["exportable"]) == [True, True, False]
    assert plan.loc[2, "blocking"] == ["full-ecs-image"]
    assert not panel._launch.disabled
    assert "refused: full-ecs-image" in panel._plan.value
    assert repr(panel) == f"ExportPanel(to {USABLE}: 3 planned, 2 exportable)"


def test_launch_asks_first_and_cancel_sends_nothing(sim_client: ImsClient, three: pd.DataFrame, ledger: Ledger,
                                                    sent: RequestLog) -> None:  # fmt: skip
    panel = ExportPanel(sim_client, ledger, images=three)
    panel._launch.click()
    assert panel._confirmation.layout.display == "flex"
    assert (
        "Launch 2 export(s)" in panel._question.value and "1 refused image(s) will be skipped" in panel._question.value
    )
    panel._cancel.click()
    assert panel._confirmation.layout.display == "none"
    assert "launch cancelled: nothing was sent" in [e.text for e in panel.log_panel.entries]
    assert export_posts(sent) == [] and ledger.rows() == []


def test_confirm_launches_through_the_ledger_once_and_reports_what_was_skipped(
    sim_client: ImsClient, three: pd.DataFrame, ledger: Ledger, fresh_sim: Simulator
) -> None:
    panel = ExportPanel(sim_client, ledger, images=three)
    panel._launch.click()
    panel._confirm.click()
    assert panel.log_panel.errors == []
    rows = ledger.rows()
    assert sorted(r["image_id"] for r in rows) == sorted(three["id"][:2])
    assert {r["state"] for r in rows} == {"submitted"}
    assert "launched 2" in panel._report.value
    assert f"skipped {three['name'][2]}: refused: preflight: full-ecs-image" in panel._report.value
    # the plan now sees the running exports, and a second launch sends nothing new
    assert panel.review.plan["blocking"][:2].tolist() == [["already-exporting"]] * 2
    panel.launch()
    assert len(ledger.rows()) == 2 and len(sim_jobs(fresh_sim)) == 2


def test_a_second_panel_skips_what_the_ledger_already_holds(sim_client: ImsClient, three: pd.DataFrame,
                                                            ledger: Ledger, fresh_sim: Simulator) -> None:  # fmt: skip
    ExportPanel(sim_client, ledger, images=three.head(1)).launch()
    panel = ExportPanel(sim_client, ledger, images=three, key_template="{name}-{id8}.{ext}")
    launched = panel.launch()
    assert len(launched) == 1 and len(sim_jobs(fresh_sim)) == 2
    assert "launched 1" in panel._report.value


def test_target_changes_replan_and_errors_show_in_the_log(sim_client: ImsClient, three: pd.DataFrame,
                                                          ledger: Ledger) -> None:  # fmt: skip
    panel = ExportPanel(sim_client, ledger, images=three)
    panel._bucket.value = "ims-archive-cold"
    assert not panel.review.plan["exportable"].any() and panel._launch.disabled
    panel._bucket.value = USABLE
    panel._quick.value = True
    assert panel.review.plan["quick"].all()
    panel._template.value = "{nope}.qcow2"
    assert panel.review is None and panel._launch.disabled
    assert any("planning failed" in e and "nope" in e for e in panel.log_panel.errors)
    panel._template.value = "fixed.qcow2"  # every image gets the same key
    assert any("the key template gives" in e for e in panel.log_panel.errors)


def test_a_failing_launch_lands_in_the_log_panel(sim_client: ImsClient, three: pd.DataFrame, ledger: Ledger,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the launcher broke")

    monkeypatch.setattr("ims_nb.widgets.panel.launch", broken)
    panel = ExportPanel(sim_client, ledger, images=three)
    panel._launch.click()
    panel._confirm.click()  # raises inside the callback: nowhere to go but the log
    assert len(panel.log_panel.errors) == 1
    assert panel.log_panel.errors[0].startswith("launching failed: unexpected RuntimeError: the launcher broke")
    assert panel.log_panel.layout.display == "block"


def test_nothing_picked_means_nothing_to_launch(sim_client: ImsClient, ledger: Ledger) -> None:
    panel = ExportPanel(sim_client, ledger)
    assert panel.review is None and panel._launch.disabled
    assert repr(panel) == f"ExportPanel(to {USABLE}, nothing planned)"
    assert panel.ask() == "Nothing to launch: pick images first."
    assert panel._confirmation.layout.display == "none"
    assert panel.launch().empty and ledger.rows() == []
    assert "Nothing to launch" in panel._report.value


def test_the_preview_follows_the_panel_with_verdicts_rules_and_fixes(sim_client: ImsClient, three: pd.DataFrame,
                                                                     ledger: Ledger) -> None:  # fmt: skip
    panel = ExportPanel(sim_client, ledger, images=three)
    preview = ViolationsPreview(panel)
    verdicts = preview.verdicts()
    assert list(verdicts["verdict"]) == ["ok", "ok", "error"]
    assert verdicts["rules"][2] == ["full-ecs-image"]
    table = preview._table.value
    assert "ims-nb-verdict-error" in table and "full-ecs-image" in table and "fix:" in table
    assert "color:#b00020" in table  # refused in red
    assert "2 exportable" in preview._summary.value and "1 refused" in preview._summary.value
    assert repr(preview) == "ViolationsPreview(3 images: 2 exportable, 1 refused)"
    preview._only_problems.value = True
    assert three["name"][0] not in preview._table.value and three["name"][2] in preview._table.value
    panel._bucket.value = "ims-archive-cold"  # the preview follows the panel's target
    assert set(preview.verdicts()["verdict"]) == {"error"}
    assert "bucket-not-standard" in preview._table.value


def test_the_preview_shows_a_broken_review_in_its_log(sim_client: ImsClient, three: pd.DataFrame,
                                                      ledger: Ledger) -> None:  # fmt: skip
    preview = ViolationsPreview()
    assert repr(preview) == "ViolationsPreview(no images)" and "no images picked" in preview._summary.value
    preview._on_review({"new": "not a review"})
    assert len(preview.log_panel.errors) == 1 and preview.log_panel.errors[0].startswith("showing the verdicts failed")
