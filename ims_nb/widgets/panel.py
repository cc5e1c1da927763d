"""``ExportPanel``: target bucket, key template, format and fast export; the plan; Launch, with confirmation."""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import ipywidgets as w
import pandas as pd  # type: ignore[import-untyped, unused-ignore]
import traitlets

from ims_nb.client.protocol import ClientLike
from ims_nb.exports.launch import launch
from ims_nb.exports.ledger import Ledger
from ims_nb.exports.plan import Review, review
from ims_nb.exports.schema import COLUMNS
from ims_nb.targets import is_estate
from ims_nb.vocab import DEFAULT_KEY_TEMPLATE, FILE_FORMATS, Action, Scope
from ims_nb.widgets.bucket_choice import WHOLE_DESCRIPTION, RegionBuckets, bucket_dropdown, buckets_text, field_layout
from ims_nb.widgets.estate_views import decide, ledger_of
from ims_nb.widgets.log import LogPanel, describe, reports_errors
from ims_nb.widgets.violations import EXPORTED, EXPORTING, export_states, job_text, tracked_verdict

QUICK_CHOICES = (("auto", "auto"), ("on", True), ("off", False))
NOTHING = "Nothing to launch: pick images first."


class ExportPanel(w.VBox):  # type: ignore[misc]
    """Chooses where and how the picked images are exported, previews the plan, and launches it through the ledger.

    On an estate (``ims_nb.connect_estate``), the bucket is chosen per region of the picked images (a dropdown
    each, ``bucket in <region>``), each row is planned with its own region's bucket and launched at its own
    scope, and the ledger is consulted as each row's scope.

    Args:
        client: an ``ImsClient``, or an ``Estate``.
        ledger: the ``Ledger`` every launch goes through (one export per image and target, ever), or its path
            or URL (default: the client's, as ``ledger_for`` gives it).
        picker: an ``ImagePicker`` whose picks are planned (or pass ``images``).
        images: an images frame to plan instead of a picker's picks.
        monitor: a ``JobMonitor`` told to follow what was launched.
    """

    review = traitlets.Any(None)  # the current Review, or None while nothing can be planned
    problem = traitlets.Unicode("")  # why the picked images cannot be planned ('' when they can, or none are picked)

    def __init__(
        self,
        client: ClientLike | Mapping[Scope, ClientLike],
        ledger: Ledger | str | Path | None = None,
        *,
        picker: Any = None,
        images: pd.DataFrame | None = None,
        monitor: Any = None,
        key_template: str = DEFAULT_KEY_TEMPLATE,
        file_format: str = "qcow2",
    ) -> None:
        self._client, self._picker, self._images, self._monitor = client, picker, images, monitor
        # only the rows of the account the client is on; an estate's rows are bound per scope where decided
        self._ledger = ledger_of(client, ledger)
        self.log_panel = LogPanel()
        self._bucket = RegionBuckets(client) if isinstance(client, Mapping) else bucket_dropdown(client)
        self._template = w.Text(value=key_template, description="object key", continuous_update=False,
                                layout=field_layout([key_template]), style=WHOLE_DESCRIPTION)  # fmt: skip
        self._format = w.Dropdown(options=list(FILE_FORMATS), value=file_format, description="format")
        self._quick = w.ToggleButtons(options=list(QUICK_CHOICES), value="auto", description="fast export")
        self._plan = w.HTML()
        self._launch = w.Button(description="Launch", button_style="primary", disabled=True, icon="play")
        self._question = w.HTML()
        self._question.add_class("ims-nb-panel-question")
        self._confirm = w.Button(description="Confirm", button_style="danger")
        self._cancel = w.Button(description="Cancel")
        self._confirmation = w.HBox([self._question, self._confirm, self._cancel], layout=w.Layout(display="none"))
        self._report = w.HTML()
        super().__init__([self._bucket, self._template, self._format, self._quick, self._plan, self._launch,
                          self._confirmation, self._report, self.log_panel])  # fmt: skip
        self._name_parts()
        for control in (self._template, self._format, self._quick):
            control.observe(self._on_target, names="value")
        self._bucket.observe(self._on_target, names="chosen" if is_estate(client) else "value")  # a user's choice
        if picker is not None:
            picker.observe(self._on_target, names="picked")
        if monitor is not None and monitor.has_trait("states"):
            monitor.observe(self._on_jobs, names="states")  # what it follows changed state: judge anew
        self._launch.on_click(self._on_launch)
        self._confirm.on_click(self._on_confirm)
        self._cancel.on_click(self._on_cancel)
        self.launched: pd.DataFrame | None = None
        self.refresh()

    def _name_parts(self) -> None:
        self.add_class("ims-nb-panel")
        for part, name in ((self._bucket, "bucket"), (self._template, "template"), (self._format, "format"),
                           (self._quick, "quick"), (self._plan, "plan"), (self._launch, "launch"),
                           (self._confirm, "confirm"), (self._cancel, "cancel"), (self._report, "report")):  # fmt: skip
            part.add_class(f"ims-nb-panel-{name}")

    @property
    def bucket(self) -> str | dict[str, str | None] | None:
        """The chosen bucket; on an estate region -> bucket (None: the region has no usable bucket)."""
        return self._bucket.value

    def images(self) -> pd.DataFrame | None:
        """The images to plan: the picker's picks, else the frame given."""
        return self._picker.selected if self._picker is not None else self._images

    def refresh(self) -> Review | None:
        """Plan the picked images for the chosen target again (the target objects are looked up anew)."""
        images = self.images()
        if images is None or not len(images):
            self._planned(None, "")
        elif self.bucket is None:
            self._planned(None, "no bucket to export to: create a Standard bucket in this region")
        else:
            try:
                planned = self._review(images)
            except Exception as exc:
                self._planned(None, describe(exc))
                raise
            self._planned(replace(planned, decisions=decide(self._ledger, planned.plan, self._client)), "")
        return self.review  # type: ignore[no-any-return]

    def _review(self, images: pd.DataFrame) -> Review:
        """The review of the images for the chosen target (on an estate, each row with its region's bucket)."""
        options = {"key_template": self._template.value, "file_format": self._format.value,
                   "quick": self._quick.value, "client": self._client}  # fmt: skip
        if isinstance(self._bucket, RegionBuckets):
            return self._bucket.refuse_bucketless(review(images, bucket=self._bucket.buckets_for(images), **options))
        return review(images, bucket=self._bucket.value, **options)

    def _planned(self, current: Review | None, problem: str) -> None:
        """Show a new plan (or why there is none), and drop a report about nothing once something is planned."""
        self.problem = problem
        self.review = current
        if current is not None and self._report.value == html.escape(NOTHING):
            self._report.value = ""
        self._show_plan()

    def _show_plan(self) -> None:
        plan = None if self.review is None else self.review.plan
        if plan is not None:
            self._plan.value = _plan_html(self.review)
        elif self.problem:
            images = self.images()
            count = 0 if images is None else len(images)
            self._plan.value = (f"<div style='color:#b00020'>cannot plan the export of {count} picked image(s): "
                                f"{html.escape(self.problem)}; fix the target above to plan them</div>")  # fmt: skip
        else:
            self._plan.value = "<i>pick images to plan their export</i>"
        self._launch.disabled = plan is None or not plan["exportable"].fillna(False).any()
        self._confirmation.layout.display = "none"

    @reports_errors("planning", clears=True)
    def _on_target(self, change: dict[str, Any]) -> None:
        self.refresh()

    @reports_errors("planning", clears=True)
    def _on_jobs(self, change: dict[str, Any]) -> None:
        if self._confirmation.layout.display == "none":
            self.refresh()
        else:
            self.ask()  # a question is open: ask it again about what is true now

    @reports_errors("preparing the launch")
    def _on_launch(self, button: Any = None) -> None:
        self.ask()

    def ask(self) -> str:
        """What Launch asks before anything is sent (shown with Confirm and Cancel); returns the question.

        With nothing planned, nothing is asked: returns ``NOTHING``.
        """
        current = self.refresh()
        if current is None:
            return NOTHING
        plan = current.plan
        exportable = int(plan["exportable"].fillna(False).sum())
        tracked = int(export_states(current)["state"].map(tracked_verdict).notna().sum())
        refused = len(plan) - exportable - tracked
        question = f"Launch {exportable} export(s) to bucket <b>{buckets_text(self.bucket)}</b>?"
        if refused:
            question += f" {refused} refused image(s) will be skipped."
        if tracked:
            question += f" {tracked} image(s) exporting or exported there already will be skipped."
        self._question.value = question
        self._confirmation.layout.display = "flex"
        return question

    @reports_errors("launching")
    def _on_confirm(self, button: Any = None) -> None:
        self.launch()

    @reports_errors("cancelling")
    def _on_cancel(self, button: Any = None) -> None:
        self._confirmation.layout.display = "none"
        self.log_panel.info("launch cancelled: nothing was sent")

    def launch(self) -> pd.DataFrame:
        """Launch the plan through the ledger (what Confirm does); report launched and skipped; start the monitor.

        Returns:
            The ledger rows launched (as ``ims_nb.launch``); none when nothing is planned.
        """
        self._confirmation.layout.display = "none"
        current = self.refresh()
        if current is None:
            self._report.value = html.escape(NOTHING)
            return pd.DataFrame(columns=list(COLUMNS))
        decisions = decide(self._ledger, current.plan, self._client)
        launched = launch(current.plan, client=self._client, ledger=self._ledger)
        self.launched = launched
        self._report.value = _report_html(current.plan, decisions, launched)
        if self._monitor is not None and len(launched):
            self._monitor.follow(launched)
            self._monitor.start()
        self.refresh()
        return launched

    def __repr__(self) -> str:
        plan = None if self.review is None else self.review.plan
        if plan is None:
            return f"ExportPanel(to {buckets_text(self.bucket)}, nothing planned)"
        exportable = int(plan["exportable"].fillna(False).sum())
        return f"ExportPanel(to {buckets_text(self.bucket)}: {len(plan)} planned, {exportable} exportable)"


def _plan_html(current: Review) -> str:
    head = "<tr><th>image</th><th>target</th><th>format</th><th>size</th><th>verdict</th></tr>"
    plan, tracked = current.plan, export_states(current)
    rows = [
        f"<tr><td>{_esc(r.name)}</td><td><code>{_esc(r.bucket_url)}</code></td>"
        f"<td>{'fast (zvhd2)' if r.quick else _esc(r.file_format)}</td><td>{r.size_gb:.1f} GB</td>"
        f"<td>{_plan_verdict(r, state, job_id)}</td></tr>"
        for r, state, job_id in zip(plan.itertuples(index=False), tracked["state"], tracked["job_id"], strict=True)
    ]
    return "<table class='ims-nb-plan'>" + head + "".join(rows) + "</table>"


def _plan_verdict(row: Any, state: Any, job_id: Any) -> str:
    """Exporting or exported (with its job) when the ledger holds the export, else exportable or refused."""
    verdict = tracked_verdict(state)
    if verdict in (EXPORTING, EXPORTED):
        return (
            f"<span class='ims-nb-verdict-{verdict}'>{_esc(verdict + job_text(verdict, job_id, row.bucket_url))}</span>"
        )
    return "exportable" if row.exportable else "refused: " + _esc(", ".join(row.blocking))


def _report_html(plan: pd.DataFrame, decisions: pd.DataFrame, launched: pd.DataFrame) -> str:
    """What was launched, and for every other image why not: the ledger's decision (``Ledger.decide``)."""
    sent = set(launched["image_id"])
    lines = [f"<b>launched {len(launched)}</b>: " + ", ".join(_esc(n) for n in launched["image_name"])]
    for name, image_id, action, reason in zip(plan["name"], plan["image_id"], decisions["action"],
                                              decisions["reason"], strict=True):  # fmt: skip
        if image_id not in sent:
            why = f"{action}: {reason}" if action == Action.REFUSED else reason or "launched meanwhile elsewhere"
            lines.append(f"skipped {_esc(name)}: {_esc(why)}")
    return "<br>".join(lines)


def _esc(value: Any) -> str:
    return html.escape("" if value is None or value is pd.NA else str(value))
