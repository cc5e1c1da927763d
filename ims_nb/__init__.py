"""ims-nb: export private Huawei Cloud IMS images to OBS from Jupyter, safely and in bulk."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
