"""The ``ims-nb`` command line: one module per verb, and private modules for what the verbs share."""

from __future__ import annotations

import sys
from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ims-nb`` console script: ``ims_nb.cli._main.main``, with Ctrl-C at any moment (in the
    imports of the first second too) one line on stderr and exit 130.

    Nothing is imported before the handling is in place: this module loads only ``sys``.
    """
    try:
        from ims_nb.cli._main import main as run

        return run(argv)
    except KeyboardInterrupt:
        from ims_nb.cli._console import EXIT_INTERRUPTED  # light: ims_nb.errors is loaded with the package

        args = sys.argv[1:] if argv is None else list(argv)
        verb = f" {args[0]}" if args and not args[0].startswith("-") else ""
        print(f"ims-nb{verb}: error: interrupted", file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED
