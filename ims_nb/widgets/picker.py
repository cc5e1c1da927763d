"""``ImagePicker``: search, filter and page the images frame, and pick the images to export."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Final

import ipywidgets as w
import pandas as pd  # type: ignore[import-untyped, unused-ignore]
import traitlets

from ims_nb import selection
from ims_nb.client.protocol import ClientLike
from ims_nb.errors import ConfigError
from ims_nb.widgets.log import LogPanel, reports_errors
from ims_nb.widgets.picker_text import choices, paging_text, row_labels, summary_text

__all__ = ["CssClass", "EstateCssClass", "ImagePicker"]

_EVERY: Final = ""  # the value of a region or project dropdown's first choice: all of them
_FILTER_LAYOUT: Final = {"width": "auto", "min_width": "10em"}


class CssClass(StrEnum):
    """The CSS classes a browser test can find the picker's parts by."""

    PICKER = "ims-nb-picker"
    SEARCH = "ims-nb-picker-search"
    PLATFORMS = "ims-nb-picker-platforms"
    STATUSES = "ims-nb-picker-statuses"
    SIZES = "ims-nb-picker-sizes"
    EXPORTABLE = "ims-nb-picker-exportable"
    ROW = "ims-nb-picker-row"
    PREVIOUS = "ims-nb-picker-previous"
    NEXT = "ims-nb-picker-next"
    PAGING = "ims-nb-picker-paging"
    PICK_ALL = "ims-nb-picker-pick-all"
    CLEAR = "ims-nb-picker-clear"
    SUMMARY = "ims-nb-picker-summary"


class EstateCssClass(StrEnum):
    """The CSS classes of the parts only an estate's frame shows."""

    REGIONS = "ims-nb-picker-regions"
    PROJECTS = "ims-nb-picker-projects"


def _styled(widget: Any, css: CssClass | EstateCssClass) -> Any:
    widget.add_class(css.value)
    return widget


def _one_choice(what: str, every: str, options: list[str], css: EstateCssClass) -> Any:
    """A dropdown of ``every`` (value ``_EVERY``) then ``options``."""
    choices = [(every, _EVERY), *((option, option) for option in options)]
    return _styled(w.Dropdown(options=choices, value=_EVERY, description=what, layout=w.Layout(**_FILTER_LAYOUT)), css)


def _unique(frame: pd.DataFrame) -> bool:
    """One row per image id, under a unique index (rows are found by label)."""
    return bool(frame["id"].is_unique and frame.index.is_unique)


def _multi_choice(what: str, options: list[str], css: CssClass) -> Any:
    rows = max(2, min(6, len(options)))
    return _styled(w.SelectMultiple(options=options, rows=rows, description=what,
                                    layout=w.Layout(**_FILTER_LAYOUT)), css)  # fmt: skip


class ImagePicker(w.VBox):  # type: ignore[misc]
    """The images frame, searched and filtered, one page at a time; ``picked`` holds the chosen image ids.

    An estate's frame (``connect_estate(...).images()``, with region and project columns) adds a region and a
    project dropdown (the projects of the chosen region), and the summary says how many of each are shown.
    Each keystroke filters the whole frame (vectorised) and updates one page of row checkboxes, which are
    made once and reused, so ten thousand images stay responsive.
    """

    #: The picked image ids, in pick order (not synced to the browser); set it to pick programmatically.
    picked = traitlets.List(traitlets.Unicode())

    def __init__(
        self, client: ClientLike | None = None, *, images: pd.DataFrame | None = None, page_size: int = 20
    ) -> None:
        """Show ``images`` (default: ``client.images()``, fetched once); ``client`` also gives project and region.

        Raises:
            ConfigError: neither a client nor images, a frame without unique ids, or a bad ``page_size``.
        """
        if images is None:
            if client is None:
                raise ConfigError("ImagePicker needs a client or images=client.images()")
            images = client.images()
        frame = selection.one_row_per_image(images)
        selection.page_count(0, page_size)  # validates page_size
        if not isinstance(frame, pd.DataFrame) or "id" not in frame.columns or not _unique(frame):
            raise ConfigError("images must be the images frame (client.images()): one row per image id, unique index")
        self._frame = frame
        self._id_index = pd.Index(frame["id"].astype(str))
        self._exportable = selection.exportability(frame, client=client)
        self._estate = selection.is_estate(frame)
        self._page_size = page_size
        self._page_number = 1
        self._matching = frame
        self._rendering = False
        self._build_controls()
        self._row_pool = [self._make_row() for _ in range(page_size)]
        self._row_ids: list[str] = []
        self.log_panel = LogPanel()  # the last child; ``log`` stays the widget's logging.Logger trait
        super().__init__(children=[self._search, self._filters, self._rows, self._paging_bar, self._pick_bar,
                                   self._summary, self.log_panel])  # fmt: skip
        self.add_class(CssClass.PICKER.value)
        self.observe(self._on_picked, names="picked")
        self._render_page()
        self._render_summary()

    def _build_controls(self) -> None:
        frame = self._frame  # the search box's width: auto, stretched by the VBox with its margins inside the column
        hint = "search name, id, platform, OS" + (", region, project" if self._estate else "")
        self._search = _styled(w.Text(placeholder=hint, continuous_update=True,
                                      layout=w.Layout(width="auto", max_width="100%")), CssClass.SEARCH)  # fmt: skip
        self._region = _one_choice("region", "all regions", selection.regions_in(frame), EstateCssClass.REGIONS)
        self._project = _one_choice("project", "all projects", selection.projects_in(frame), EstateCssClass.PROJECTS)
        self._platforms = _multi_choice("platform", choices(frame["platform"]), CssClass.PLATFORMS)
        self._statuses = _multi_choice("status", choices(frame["status"]), CssClass.STATUSES)
        self._sizes = _multi_choice("size", list(selection.SIZE_BANDS), CssClass.SIZES)
        self._exportable_only = _styled(w.Checkbox(description="exportable only", indent=False), CssClass.EXPORTABLE)
        scope = [self._region, self._project] if self._estate else []
        self._filters = w.HBox([*scope, self._platforms, self._statuses, self._sizes, self._exportable_only])
        self._rows = w.VBox()
        self._previous = _styled(w.Button(description="previous", icon="chevron-left"), CssClass.PREVIOUS)
        self._next = _styled(w.Button(description="next", icon="chevron-right"), CssClass.NEXT)
        self._paging = _styled(w.Label(), CssClass.PAGING)
        self._paging_bar = w.HBox([self._previous, self._next, self._paging])
        self._pick_all = _styled(w.Button(description="pick all matching"), CssClass.PICK_ALL)
        self._clear = _styled(w.Button(description="clear"), CssClass.CLEAR)
        self._pick_bar = w.HBox([self._pick_all, self._clear])
        self._summary = _styled(w.Label(), CssClass.SUMMARY)
        self._search.observe(self._on_search, names="value")
        for control in (self._platforms, self._statuses, self._sizes, self._exportable_only, self._project):
            control.observe(self._on_filter, names="value")
        self._region.observe(self._on_region, names="value")
        self._previous.on_click(self._on_previous)
        self._next.on_click(self._on_next)
        self._pick_all.on_click(self._on_pick_all)
        self._clear.on_click(self._on_clear)

    def _make_row(self) -> Any:
        row = _styled(w.Checkbox(indent=False, layout=w.Layout(width="auto")), CssClass.ROW)
        row.observe(self._on_row, names="value")
        return row

    # --- public API --------------------------------------------------------------------------------

    @property
    def frame(self) -> pd.DataFrame:
        """The full images frame (treat it as read-only)."""
        return self._frame

    @property
    def matching(self) -> pd.DataFrame:
        """The rows of the frame that match the current search and filters."""
        return self._matching

    @property
    def selected(self) -> pd.DataFrame:
        """The rows of the frame for the picked ids, in pick order."""
        return self._frame.iloc[self._id_index.get_indexer(self.picked)]

    def search(self, text: str) -> None:
        """Search for ``text`` as if typed into the search box."""
        self._search.value = text

    def pick(self, *ids: str) -> None:
        """Add images to ``picked`` (after those already picked; an id picked twice keeps its place)."""
        self.picked = [*self.picked, *ids]

    def unpick(self, *ids: str) -> None:
        """Remove images from ``picked`` (ids not picked are ignored)."""
        dropped = set(ids)
        self.picked = [image_id for image_id in self.picked if image_id not in dropped]

    def clear(self) -> None:
        """Pick nothing."""
        self.picked = []

    def __repr__(self) -> str:
        shown, picked = len(self._row_ids), len(self.picked)
        return f"{type(self).__name__}({len(self._frame)} images, {shown} shown, {picked} picked)"

    @traitlets.validate("picked")
    def _valid_picked(self, proposal: Any) -> list[str]:
        ids = list(dict.fromkeys(proposal["value"]))  # first occurrence wins: pick order
        unknown = [image_id for image_id, at in zip(ids, self._id_index.get_indexer(ids), strict=True) if at < 0]
        if unknown:
            raise ConfigError(f"unknown image id(s): {', '.join(unknown[:5])}{' ...' if len(unknown) > 5 else ''}")
        return ids

    # --- events --------------------------------------------------------------------------------------

    @reports_errors("search")
    def _on_search(self, change: dict[str, Any]) -> None:
        self._refilter()

    @reports_errors("filter")
    def _on_filter(self, change: dict[str, Any]) -> None:
        self._refilter()

    @reports_errors("region")
    def _on_region(self, change: dict[str, Any]) -> None:
        projects = selection.projects_in(self._frame, change["new"] or None)
        chosen = self._project.value if self._project.value in projects else _EVERY
        self._project.unobserve(self._on_filter, names="value")  # one refilter, below, not one per change
        try:
            self._project.options = [self._project.options[0], *((p, p) for p in projects)]
            self._project.value = chosen
        finally:
            self._project.observe(self._on_filter, names="value")
        self._refilter()

    @reports_errors("previous page")
    def _on_previous(self, button: Any) -> None:
        self._turn(-1)

    @reports_errors("next page")
    def _on_next(self, button: Any) -> None:
        self._turn(+1)

    @reports_errors("pick all matching")
    def _on_pick_all(self, button: Any) -> None:
        self.pick(*self._matching["id"].astype(str))

    @reports_errors("clear")
    def _on_clear(self, button: Any) -> None:
        self.clear()

    @reports_errors("pick")
    def _on_row(self, change: dict[str, Any]) -> None:
        if self._rendering:
            return
        image_id = self._row_ids[self._row_pool.index(change["owner"])]
        if change["new"]:
            self.pick(image_id)
        else:
            self.unpick(image_id)

    @reports_errors("show picked")
    def _on_picked(self, change: dict[str, Any]) -> None:
        self._render_rows()
        self._render_summary()

    # --- rendering -----------------------------------------------------------------------------------

    def _refilter(self) -> None:
        self._matching = selection.filter_images(
            self._frame,
            text=self._search.value,
            platforms=self._platforms.value,
            statuses=self._statuses.value,
            size_bands=self._sizes.value,
            exportable=self._exportable,
            exportable_only=self._exportable_only.value,
            regions=[self._region.value] if self._region.value else [],
            projects=[self._project.value] if self._project.value else [],
        )
        self._render_page(1)
        self._render_summary()

    def _turn(self, step: int) -> None:
        pages = selection.page_count(len(self._matching), self._page_size)
        self._render_page(min(max(1, self._page_number + step), pages))

    def _render_page(self, number: int = 1) -> None:
        pages = selection.page_count(len(self._matching), self._page_size)
        shown = selection.page(self._matching, number, self._page_size)
        self._page_number = number
        self._row_ids = shown["id"].astype(str).tolist()
        for row, label in zip(self._row_pool, row_labels(shown, self._exportable, estate=self._estate), strict=False):
            row.description = label
        self._rows.children = tuple(self._row_pool[: len(self._row_ids)])
        self._render_rows()
        self._previous.disabled = self._page_number <= 1
        self._next.disabled = self._page_number >= pages
        self._paging.value = paging_text(self._page_number, pages, len(self._matching))

    def _render_rows(self) -> None:
        picked = set(self.picked)
        self._rendering = True
        try:
            for row, image_id in zip(self._row_pool, self._row_ids, strict=False):
                row.value = image_id in picked
        finally:
            self._rendering = False

    def _render_summary(self) -> None:
        self._summary.value = summary_text(self._matching, self.selected, self._exportable, estate=self._estate)
