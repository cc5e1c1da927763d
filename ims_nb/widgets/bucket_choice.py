"""The panel's bucket controls: one dropdown on a client, one per region of the picked images on an estate."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

import ipywidgets as w
import pandas as pd  # type: ignore[import-untyped, unused-ignore]
import traitlets

from ims_nb.client.protocol import ClientLike
from ims_nb.exports.plan import Review
from ims_nb.targets import bucket_choices, region_bucket_choices
from ims_nb.vocab import Scope

#: Room for a control's description (``bucket``, ``object key``) and a dropdown's arrow, in characters.
CONTROL_MARGIN = 16
#: The narrowest the bucket and key fields get, in characters.
MIN_FIELD = 40
#: A description shown whole, never cut to the default width.
WHOLE_DESCRIPTION = {"description_width": "initial"}
#: Why the rows of a region without a usable bucket are refused (the choice its dropdown shows).
NO_BUCKET_IN = "no usable bucket in {region}: create a Standard bucket there"
#: The rule preflight gives a row without a bucket name; rows of a region without a bucket say why instead.
_NO_NAME_RULE = "bucket-url-invalid"


def field_layout(labels: list[str]) -> w.Layout:
    """A field wide enough for its longest label (a bucket's choice, the key template) and its description."""
    longest = max((len(label) for label in labels), default=0)
    return w.Layout(width="auto", min_width=f"{max(longest + CONTROL_MARGIN, MIN_FIELD)}ch")


def bucket_dropdown(client: ClientLike) -> Any:
    """The one bucket dropdown of a single client: the account's buckets, usable ones first."""
    choices = bucket_choices(client)
    return w.Dropdown(options=[(c.label, c.name) for c in choices], description="bucket",
                      layout=field_layout([c.label for c in choices]), style=WHOLE_DESCRIPTION)  # fmt: skip


def buckets_text(bucket: str | Mapping[str, str | None] | None) -> str:
    """The chosen target as a question names it: the bucket, or ``a (in r1), b (in r2)`` per region."""
    if not isinstance(bucket, Mapping):
        return str(bucket)
    return ", ".join(f"{name or 'none'} (in {region})" for region, name in bucket.items()) or "no bucket"


class RegionBuckets(w.VBox):  # type: ignore[misc]
    """A bucket dropdown per region of the picked images (``bucket in <region>``), each with that region's
    buckets, usable ones first; a region without a usable bucket says so (its dropdown is disabled).

    ``chosen`` counts the user's choices (the panel plans again on each); ``value`` is region -> bucket name
    (None: the region has no usable bucket). The buckets of a region are looked up once, when first shown.
    """

    chosen = traitlets.Int(0)

    def __init__(self, clients: Mapping[Scope, ClientLike]) -> None:
        self._clients = clients
        self._dropdowns: dict[str, Any] = {}
        super().__init__([])
        self.add_class("ims-nb-panel-buckets")

    @property
    def value(self) -> dict[str, str | None]:
        return {region: self._dropdowns[region].value for region in self._shown()}

    def _shown(self) -> list[str]:
        return [child.region for child in self.children]

    def show(self, regions: Iterable[str]) -> None:
        """Show the dropdowns of these regions (made, and their buckets looked up, the first time)."""
        wanted = sorted({str(r) for r in regions})
        for region in wanted:
            if region not in self._dropdowns:
                self._dropdowns[region] = self._dropdown(region)
        if wanted != self._shown():
            self.children = [self._dropdowns[region] for region in wanted]

    def _dropdown(self, region: str) -> Any:
        choices = region_bucket_choices(self._clients, region)
        usable = any(c.problem is None for c in choices)
        options = [(c.label, c.name) for c in choices] if usable else [(NO_BUCKET_IN.format(region=region), None)]
        layout = field_layout([label for label, _ in options])
        dropdown = w.Dropdown(options=options, description=f"bucket in {region}", disabled=not usable,
                              layout=layout, style=WHOLE_DESCRIPTION)  # fmt: skip
        dropdown.region = region
        dropdown.add_class("ims-nb-panel-region-bucket")
        dropdown.observe(self._on_choice, names="value")
        return dropdown

    def _on_choice(self, change: dict[str, Any]) -> None:
        self.chosen += 1

    def buckets_for(self, images: pd.DataFrame) -> dict[str, str]:
        """``review``'s ``bucket=`` for these images: region -> the bucket chosen there (shown first); a region
        without a usable bucket gets no name, which preflight refuses (``refuse_bucketless`` says why)."""
        self.show(images["region"].dropna())
        return {region: name or "" for region, name in self.value.items()}

    def refuse_bucketless(self, review: Review) -> Review:
        """The review with the rows of regions without a usable bucket refused for that reason (instead of the
        empty bucket name's ``bucket-url-invalid``)."""
        missing = {region: NO_BUCKET_IN.format(region=region) for region, name in self.value.items() if not name}
        if not missing:
            return review
        plan = review.plan.copy()
        why = plan["region"].map(missing)
        bucketless = why.notna()
        for column in ("blocking", "messages"):
            plan[column] = [_swap(items, reason, column) if hit else items
                            for items, reason, hit in zip(plan[column], why, bucketless, strict=True)]  # fmt: skip
        reasons = dict(zip(plan.loc[bucketless, "image_id"], why[bucketless], strict=True))
        violations = review.violations.copy()
        hits = (violations["rule"] == _NO_NAME_RULE) & violations["image_id"].isin(list(reasons))
        violations.loc[hits, "message"] = violations.loc[hits, "image_id"].map(reasons)
        summary = review.summary.copy()
        summary["blocking"] = [_swap(items, reasons[i], "blocking") if i in reasons else items
                               for items, i in zip(summary["blocking"], summary["image_id"], strict=True)]  # fmt: skip
        return replace(review, plan=plan, violations=violations, summary=summary)


def _swap(items: list[str], reason: str, column: str) -> list[str]:
    """A row's blocking rules (or messages) with the empty bucket name's refusal replaced by ``reason``."""
    if column == "blocking":
        return [reason if item == _NO_NAME_RULE else item for item in items]
    return [reason if "bucket name is empty" in item else item for item in items]
