"""The ``ims-nb`` command line: ``sim`` serves the simulator, ``lab`` runs JupyterLab against it, ``app`` the export
dashboard, ``images`` lists, ``preflight`` says which exports would be refused, ``export`` exports, ``jobs`` shows
and follows the ledger."""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from ims_nb.cli._console import EXIT_USAGE
from ims_nb.cli.app import add_app_parser
from ims_nb.cli.export import add_export_parser
from ims_nb.cli.images import add_images_parser
from ims_nb.cli.jobs import add_jobs_parser
from ims_nb.cli.lab import add_lab_parser
from ims_nb.cli.preflight import add_preflight_parser
from ims_nb.cli.sim import add_sim_parser
from ims_nb.client.config import ENV_SECURITY_TOKEN, ENV_SK
from ims_nb.errors import mask_secrets

#: Each verb and the function that registers its sub-parser (which sets ``run``), in ``--help`` order.
VERBS: tuple[tuple[str, Callable[[Any], None]], ...] = (
    ("sim", add_sim_parser),
    ("lab", add_lab_parser),
    ("app", add_app_parser),
    ("images", add_images_parser),
    ("preflight", add_preflight_parser),
    ("export", add_export_parser),
    ("jobs", add_jobs_parser),
)
#: The SK of a simulator's JSON line, which argparse echoes when the line lands where it does not belong
#: ("unrecognized arguments: {...}", "ambiguous option: --s={...}").
_LINE_SK = re.compile(r"""(["']sk["']\s*:\s*)(["'])[^"']*\2""")


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line, with a pointer to ``--help`` (exit code 2)."""

    def error(self, message: str) -> NoReturn:
        # argparse echoes arguments: mask secrets (a --sim line's SK, the environment's SK or token, signatures),
        # and escape what would break the line (newlines, other line separators, control characters); argparse
        # quotes some values (repr) but not all ("unrecognized arguments: ...")
        secrets = tuple(value for value in (os.environ.get(ENV_SK), os.environ.get(ENV_SECURITY_TOKEN)) if value)
        masked = mask_secrets(_LINE_SK.sub(r"\1\2***\2", message), secrets)
        one_line = "".join(char if char.isprintable() else ascii(char)[1:-1] for char in masked)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {one_line} (see {self.prog} --help)\n")

    def _get_values(self, action: argparse.Action, arg_strings: list[str]) -> Any:
        # Python 3.11 drops a "--" given as an option's value (--port=--) and returns [], past the option's type
        # and choices; take it as the literal value, as later Pythons do
        if action.option_strings and action.nargs is None and arg_strings == ["--"]:
            value = self._get_value(action, "--")
            self._check_value(action, value)
            return value
        return super()._get_values(action, arg_strings)


def build_parser() -> argparse.ArgumentParser:
    """The ``ims-nb`` parser, one sub-parser per entry of ``VERBS``."""
    parser = _Parser(prog="ims-nb", description=__doc__)
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    for _, add_parser in VERBS:
        add_parser(verbs)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ims-nb`` console script.

    The client verbs turn their own errors into one line and an exit code; for ``sim``, ``lab`` and ``app``, a
    ``ValueError`` or ``OSError`` (a refused host, a port in use, a bad state file) becomes one line and exit 2.
    """
    args = build_parser().parse_args(argv)
    try:
        code: int = args.run(args)
    except (ValueError, OSError) as exc:
        print(f"ims-nb {args.verb}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return code
