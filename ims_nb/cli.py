"""The ``ims-nb`` command line."""

from __future__ import annotations

import argparse
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ims-nb`` console script."""
    parser = argparse.ArgumentParser(prog="ims-nb")
    parser.parse_args(argv)
    return 0
