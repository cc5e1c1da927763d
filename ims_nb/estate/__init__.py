"""The estate: every region and project of an account as one unit (``connect_estate``, ``Estate``)."""

from __future__ import annotations

from ims_nb.estate.connect import connect_estate
from ims_nb.estate.estate import Estate

__all__ = ["Estate", "connect_estate"]
