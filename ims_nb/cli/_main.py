"""The ``ims-nb`` command line: its parser (one sub-parser per verb, built on demand) and its entry point."""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Collection, Sequence
from typing import Any, NoReturn

from ims_nb._extras import MissingExtraError
from ims_nb.cli._console import EXIT_USAGE
from ims_nb.cli._verbs import VERBS
from ims_nb.errors import mask_secrets

#: The SK of a simulator's JSON line, which argparse echoes when the line lands where it does not belong
#: ("unrecognized arguments: {...}", "ambiguous option: --s={...}").
_LINE_SK = re.compile(r"""(["']sk["']\s*:\s*)(["'])[^"']*\2""")
#: What ``ims-nb --help`` says first (plain text, as all argparse help is).
DESCRIPTION = (
    "The ims-nb command line: sim serves the simulator, lab runs JupyterLab against it, app the export dashboard, "
    "images lists, preflight says which exports would be refused, export exports, jobs shows and follows the ledger."
)


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line, with a pointer to ``--help`` (exit code 2)."""

    def error(self, message: str) -> NoReturn:
        # argparse echoes arguments: mask secrets (a --sim line's SK, the environment's SK or token, signatures),
        # and escape what would break the line (newlines, other line separators, control characters); argparse
        # quotes some values (repr) but not all ("unrecognized arguments: ...")
        from ims_nb.client.config import ENV_SECURITY_TOKEN, ENV_SK  # only when there is an error

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


def build_parser(full: Collection[str] = tuple(VERBS)) -> argparse.ArgumentParser:
    """The ``ims-nb`` parser, one sub-parser per verb; verbs not in ``full`` are a name and a help line only, and
    their modules are not imported (``ims-nb --help`` starts about as fast as ``import httpx``)."""
    parser = _Parser(prog="ims-nb", description=DESCRIPTION)
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    for name, verb in VERBS.items():
        if name in full:
            verb.add_parser(verbs)
        else:
            verbs.add_parser(name, help=verb.help)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ims-nb`` console script.

    The client verbs turn their own errors into one line and an exit code; for ``sim``, ``lab`` and ``app``, a
    ``ValueError`` or ``OSError`` (a refused host, a port in use, a bad state file) becomes one line and exit 2.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(full=argv[:1]).parse_args(argv)  # only the verb given is built
    try:
        code: int = args.run(args)
    except (ValueError, OSError, MissingExtraError) as exc:
        print(f"ims-nb {args.verb}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return code
