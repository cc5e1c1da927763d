"""ipywidgets views of the export workflow; each is a thin ``VBox`` over package functions.

Imported lazily: ``import ims_nb.widgets`` loads ipywidgets only when a widget is first used.
"""

from __future__ import annotations

import importlib
from typing import Any

from ims_nb._extras import from_import_error

_HOMES = {
    "ImagePicker": "ims_nb.widgets.picker",
    "ViolationsPreview": "ims_nb.widgets.violations",
    "ExportPanel": "ims_nb.widgets.panel",
    "JobMonitor": "ims_nb.widgets.monitor",
    "LogPanel": "ims_nb.widgets.log",
    "ExportDashboard": "ims_nb.widgets.dashboard",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        module = importlib.import_module(home)
    except ModuleNotFoundError as exc:
        raise from_import_error(f"ims_nb.widgets.{name}", exc) from None
    return getattr(module, name)
