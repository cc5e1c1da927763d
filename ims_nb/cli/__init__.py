"""The ``ims-nb`` command line: one module per verb, and private modules for what the verbs share."""

from __future__ import annotations

from ims_nb.cli._main import main

__all__ = ["main"]
