"""Export batches: plan and review, launch through the ledger, watch to the end, and the history they leave.

The public names are on ``ims_nb`` itself; the modules here are named for the step they do.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ims_nb.exports.upkeep import copy_ledger

__all__ = ["copy_ledger"]


def __getattr__(name: str) -> Any:
    """``copy_ledger`` loads SQLAlchemy: imported when asked for, not with the package."""
    if name == "copy_ledger":
        from ims_nb.exports.upkeep import copy_ledger

        return copy_ledger
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
