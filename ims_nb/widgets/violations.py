"""``ViolationsPreview``: each picked image's verdict for the chosen target, and the rules it breaks."""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as w
import pandas as pd  # type: ignore[import-untyped, unused-ignore]

from ims_nb.exports.plan import Review
from ims_nb.rules import Severity
from ims_nb.widgets.log import LogPanel, reports_errors

#: Colours by verdict and severity: refused red, warned amber, fine green.
COLOURS = {Severity.ERROR.value: "#b00020", Severity.WARNING.value: "#8a6d00", "ok": "#1b7f3b"}
VERDICTS = {Severity.ERROR.value: "refused", Severity.WARNING.value: "exportable, with warnings", "ok": "exportable"}


class ViolationsPreview(w.VBox):  # type: ignore[misc]
    """Shows a ``Review`` (``ims_nb.exports.plan.review``): per image its verdict, each broken rule, message and fix.

    Args:
        panel: an ``ExportPanel`` (or anything with a ``review`` trait) to follow; None to call ``show`` by hand.
    """

    def __init__(self, panel: Any = None) -> None:
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
        """One row per image: ``image_id, name, verdict, rules`` (the rules it breaks, errors first)."""
        if self.review is None:
            return pd.DataFrame(columns=["image_id", "name", "verdict", "rules"])
        plan, violations = self.review.plan, self.review.violations
        by_image = violations.groupby("image_id", sort=False)["rule"].agg(list)
        return pd.DataFrame({
            "image_id": plan["image_id"], "name": plan["name"],
            "verdict": [_verdict(blocking, warnings) for blocking, warnings in zip(plan["blocking"], plan["warnings"],
                                                                                  strict=True)],
            "rules": [by_image.get(i, []) for i in plan["image_id"]],
        })  # fmt: skip

    def _render(self) -> None:
        verdicts = self.verdicts()
        counts = verdicts["verdict"].value_counts()
        self._summary.value = _summary_html(len(verdicts), counts) if len(verdicts) else "<i>no images picked</i>"
        if self._only_problems.value:
            verdicts = verdicts[verdicts["verdict"] != "ok"]
        violations = self.review.violations if self.review is not None else None
        self._table.value = _table_html(verdicts, violations) if len(verdicts) else ""

    def __repr__(self) -> str:
        verdicts = self.verdicts()
        if not len(verdicts):
            return "ViolationsPreview(no images)"
        counts = verdicts["verdict"].value_counts()
        refused = int(counts.get(Severity.ERROR.value, 0))
        return f"ViolationsPreview({len(verdicts)} images: {len(verdicts) - refused} exportable, {refused} refused)"


def _verdict(blocking: list[str], warnings: list[str]) -> str:
    return Severity.ERROR.value if blocking else Severity.WARNING.value if warnings else "ok"


def _summary_html(images: int, counts: pd.Series) -> str:
    parts = [f"<span style='color:{COLOURS[v]}'>{int(counts.get(v, 0))} {VERDICTS[v]}</span>"
             for v in ("ok", Severity.WARNING.value, Severity.ERROR.value) if counts.get(v, 0)]  # fmt: skip
    return f"<b>{images} image(s)</b>: " + ", ".join(parts)


def _table_html(verdicts: pd.DataFrame, violations: pd.DataFrame | None) -> str:
    rows = []
    for image_id, name, verdict in zip(verdicts["image_id"], verdicts["name"], verdicts["verdict"], strict=True):
        colour = COLOURS[verdict]
        rows.append(f"<tr class='ims-nb-verdict-{verdict}'><td style='color:{colour}'><b>{VERDICTS[verdict]}</b></td>"
                    f"<td colspan='3'><b>{html.escape(str(name))}</b> <code>{html.escape(str(image_id))}</code></td>"
                    "</tr>")  # fmt: skip
        if violations is not None:
            mine = violations[violations["image_id"] == image_id].sort_values("severity")
            rows.extend(_violation_row(v) for v in mine.itertuples(index=False))
    return "<table class='ims-nb-verdicts'>" + "".join(rows) + "</table>"


def _violation_row(violation: Any) -> str:
    colour = COLOURS.get(str(violation.severity), "#555555")
    fix = f"<br><i>fix: {html.escape(str(violation.fix))}</i>" if violation.fix and not pd.isna(violation.fix) else ""
    code = f" ({html.escape(str(violation.code))})" if violation.code and not pd.isna(violation.code) else ""
    return (f"<tr><td></td><td style='color:{colour}'>{html.escape(str(violation.severity))}</td>"
            f"<td><code>{html.escape(str(violation.rule))}</code>{code}</td>"
            f"<td>{html.escape(str(violation.message))}{fix}</td></tr>")  # fmt: skip
