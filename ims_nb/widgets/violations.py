"""``ViolationsPreview``: each picked image's verdict for the chosen target, and the rules it breaks."""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as w
import pandas as pd  # type: ignore[import-untyped, unused-ignore]

from ims_nb.exports.plan import Review
from ims_nb.rules import Severity
from ims_nb.vocab import DONE, LIVE
from ims_nb.widgets.log import LogPanel, reports_errors

#: The verdicts of an image whose export (to the chosen target) the ledger holds: live, or done.
EXPORTING, EXPORTED = "exporting", "exported"
#: Colours by verdict and severity: refused red, warned amber, fine green, being exported blue.
COLOURS = {Severity.ERROR.value: "#b00020", Severity.WARNING.value: "#8a6d00", "ok": "#1b7f3b",
           EXPORTING: "#1f5fa8", EXPORTED: "#1b7f3b"}  # fmt: skip
VERDICTS = {Severity.ERROR.value: "refused", Severity.WARNING.value: "exportable, with warnings", "ok": "exportable",
            EXPORTING: EXPORTING, EXPORTED: EXPORTED}  # fmt: skip
#: The order verdicts are counted in the summary.
ORDER = (EXPORTED, EXPORTING, "ok", Severity.WARNING.value, Severity.ERROR.value)


class ViolationsPreview(w.VBox):  # type: ignore[misc]
    """Shows a ``Review`` (``ims_nb.exports.plan.review``): per image its verdict, each broken rule, message and fix.

    An image whose export to the chosen target the ledger holds (the review's ``decisions``) is shown as
    exporting or exported, with its job and target, not as refused by its own export.

    Args:
        panel: an ``ExportPanel`` (or anything with a ``review`` trait) to follow; None to call ``show`` by hand.
    """

    def __init__(self, panel: Any = None) -> None:
        self._panel = panel
        self._summary = w.HTML()
        self._table = w.HTML()
        self._only_problems = w.Checkbox(value=False, description="only images with problems", indent=False)
        self.log_panel = LogPanel()
        super().__init__([self._summary, self._only_problems, self._table, self.log_panel])
        self.add_class("ims-nb-preview")
        self._table.add_class("ims-nb-preview-table")
        self.review: Review | None = None
        self._only_problems.observe(self._on_filter, names="value")
        if panel is not None:
            panel.observe(self._on_review, names="review")
            if panel.has_trait("problem"):
                panel.observe(self._on_filter, names="problem")
        self.show(None if panel is None else panel.review)

    def show(self, review: Review | None) -> None:
        """Render ``review`` (None clears the view)."""
        self.review = review
        self._render()

    @reports_errors("showing the verdicts")
    def _on_review(self, change: dict[str, Any]) -> None:
        self.show(change["new"])

    @reports_errors("filtering the verdicts")
    def _on_filter(self, change: dict[str, Any]) -> None:
        self._render()

    def verdicts(self) -> pd.DataFrame:
        """One row per image: ``image_id, name, verdict, rules, job_id`` (the rules it breaks, errors first; the
        job of its export when the verdict is exporting or exported)."""
        if self.review is None:
            return pd.DataFrame(columns=["image_id", "name", "verdict", "rules", "job_id", "target"])
        plan, violations = self.review.plan, self.review.violations
        by_image = violations.groupby("image_id", sort=False)["rule"].agg(list)
        tracked = export_states(self.review)
        return pd.DataFrame({
            "image_id": plan["image_id"], "name": plan["name"],
            "verdict": [tracked_verdict(state) or _verdict(blocking, warnings)
                        for state, blocking, warnings in zip(tracked["state"], plan["blocking"], plan["warnings"],
                                                             strict=True)],
            "rules": [by_image.get(i, []) for i in plan["image_id"]],
            "job_id": tracked["job_id"], "target": plan["bucket_url"],
        })  # fmt: skip

    def _render(self) -> None:
        verdicts = self.verdicts()
        counts = verdicts["verdict"].value_counts()
        self._summary.value = _summary_html(len(verdicts), counts) if len(verdicts) else self._nothing_judged()
        if self._only_problems.value:
            verdicts = verdicts[~verdicts["verdict"].isin(["ok", EXPORTING, EXPORTED])]
        violations = self.review.violations if self.review is not None else None
        self._table.value = _table_html(verdicts, violations) if len(verdicts) else ""

    def _nothing_judged(self) -> str:
        """The summary while there is no review: nothing picked, or why the picked images cannot be judged."""
        images = self._panel.images() if self._panel is not None and hasattr(self._panel, "images") else None
        if images is None or not len(images):
            return "<i>no images picked</i>"
        why = getattr(self._panel, "problem", "") or "no target to judge them against"
        return (f"<b>{len(images)} image(s) picked</b>: <span style='color:{COLOURS[Severity.ERROR.value]}'>cannot "
                f"judge them until the target is fixed: {html.escape(why)}</span>")  # fmt: skip

    def __repr__(self) -> str:
        verdicts = self.verdicts()
        if not len(verdicts):
            return "ViolationsPreview(no images)"
        counts = verdicts["verdict"].value_counts()
        refused = int(counts.get(Severity.ERROR.value, 0))
        tracked = {v: int(counts.get(v, 0)) for v in (EXPORTING, EXPORTED) if counts.get(v, 0)}
        exportable = len(verdicts) - refused - sum(tracked.values())
        extra = "".join(f", {n} {v}" for v, n in tracked.items())
        return f"ViolationsPreview({len(verdicts)} images: {exportable} exportable, {refused} refused{extra})"


def export_states(review: Review) -> pd.DataFrame:
    """``state`` and ``job_id`` of the ledger row behind each plan row's decision (None where the ledger holds
    nothing, or was not consulted)."""
    decisions = review.decisions
    if decisions is None:
        return pd.DataFrame({"state": None, "job_id": None}, index=review.plan.index)
    return decisions[["state", "job_id"]]


def tracked_verdict(state: Any) -> str | None:
    """``exporting`` for a live ledger row, ``exported`` for a done one, else None."""
    if isinstance(state, str):
        return EXPORTING if state in LIVE else EXPORTED if state in DONE else None
    return None


def _verdict(blocking: list[str], warnings: list[str]) -> str:
    return Severity.ERROR.value if blocking else Severity.WARNING.value if warnings else "ok"


def _summary_html(images: int, counts: pd.Series) -> str:
    parts = [f"<span style='color:{COLOURS[v]}'>{int(counts.get(v, 0))} {VERDICTS[v]}</span>"
             for v in ORDER if counts.get(v, 0)]  # fmt: skip
    return f"<b>{images} image(s)</b>: " + ", ".join(parts)


def _table_html(verdicts: pd.DataFrame, violations: pd.DataFrame | None) -> str:
    rows = []
    for v in verdicts.itertuples(index=False):
        label = f"<b>{VERDICTS[v.verdict]}</b>" + html.escape(job_text(v.verdict, v.job_id, v.target))
        rows.append(f"<tr class='ims-nb-verdict-{v.verdict}'><td style='color:{COLOURS[v.verdict]}'>{label}</td>"
                    f"<td colspan='3'><b>{html.escape(str(v.name))}</b> <code>{html.escape(str(v.image_id))}</code>"
                    "</td></tr>")  # fmt: skip
        if violations is not None and v.verdict not in (EXPORTING, EXPORTED):  # its own export is no problem
            mine = violations[violations["image_id"] == v.image_id].sort_values("severity")
            rows.extend(_violation_row(x) for x in mine.itertuples(index=False))
    return "<table class='ims-nb-verdicts'>" + "".join(rows) + "</table>"


def job_text(verdict: str, job_id: Any, target: Any) -> str:
    """`` (job J to bucket:key)`` after an exporting or exported verdict, else ''."""
    if verdict not in (EXPORTING, EXPORTED):
        return ""
    job = f"job {job_id}" if isinstance(job_id, str) and job_id else "no job id yet"
    return f" ({job} to {target})"


def _violation_row(violation: Any) -> str:
    colour = COLOURS.get(str(violation.severity), "#555555")
    fix = f"<br><i>fix: {html.escape(str(violation.fix))}</i>" if violation.fix and not pd.isna(violation.fix) else ""
    code = f" ({html.escape(str(violation.code))})" if violation.code and not pd.isna(violation.code) else ""
    return (f"<tr><td></td><td style='color:{colour}'>{html.escape(str(violation.severity))}</td>"
            f"<td><code>{html.escape(str(violation.rule))}</code>{code}</td>"
            f"<td>{html.escape(str(violation.message))}{fix}</td></tr>")  # fmt: skip
