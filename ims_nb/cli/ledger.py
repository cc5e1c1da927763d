"""``ims-nb ledger``: a ledger's schema brought to head (``upgrade``), what it holds (``info``), a copy (``copy``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, TextIO

from ims_nb.cli._console import EXIT_OK, Console, run_client_verb
from ims_nb.cli._ledgers import add_ledger_option, ledger_option
from ims_nb.cli._options import HelpFormatter
from ims_nb.cli._verbs import VERBS

DESCRIPTION = """\
Look after the export ledger as a whole. upgrade brings its schema to this ims-nb's (opening a ledger does \
it too; this says from which version to which). info shows where it is, its engine, schema version and rows \
by state, read only. copy moves every row to a new or empty ledger, SQLite to PostgreSQL or back, row ids \
kept, in one transaction."""
EPILOG = """\
examples:
  ims-nb ledger info
  ims-nb ledger upgrade --ledger ~/old-ledger.sqlite
  ims-nb ledger copy ~/.local/share/ims-nb/ledger.sqlite postgresql://ims@db.example/ledger
  ims-nb ledger copy postgresql://ims@db.example/ledger sqlite:///backup.sqlite

A ledger is a SQLite file's path, sqlite:///PATH or postgresql://USER@HOST/DB (its password in \
$PGPASSWORD or ~/.pgpass: a URL with one, in --ledger, SRC or DST, is refused); --ledger defaults to \
$IMS_NB_LEDGER, else ims-nb/ledger.sqlite under $XDG_DATA_HOME (~/.local/share). A password is never shown.

Exit codes: 0 done, 2 a ledger URL holds a password (nothing is opened), a ledger cannot be reached or read, is \
newer than this ims-nb, or (copy) the destination is not empty: nothing is written there."""


def add_ledger_parser(verbs: Any) -> None:
    """Register ``ledger`` on ``verbs``, the ``ims-nb`` parser's sub-parsers (an argparse private type)."""
    parser: argparse.ArgumentParser = verbs.add_parser(
        "ledger", help=VERBS["ledger"].help, description=DESCRIPTION, epilog=EPILOG, formatter_class=HelpFormatter
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, help_line in (("upgrade", "bring the ledger's schema to this ims-nb's"),
                            ("info", "where the ledger is, its engine, schema version and rows by state")):  # fmt: skip
        action = actions.add_parser(name, help=help_line, description=help_line, formatter_class=HelpFormatter)
        add_ledger_option(action)
    copy = actions.add_parser("copy", help="copy every row to a new or empty ledger (SQLite <-> PostgreSQL)",
                              description="Copy every row of SRC to DST, a new or empty ledger, in one transaction.",
                              formatter_class=HelpFormatter)  # fmt: skip
    copy.add_argument("source", type=ledger_argument, metavar="SRC", help="the ledger to copy (a path or URL)")
    copy.add_argument("destination", type=ledger_argument, metavar="DST",
                      help="a new or empty ledger (a path or URL)")  # fmt: skip
    parser.set_defaults(run=run_ledger)


def ledger_argument(text: str) -> str | Path:
    """``copy``'s SRC and DST, checked as ``--ledger`` is: a URL with a password is refused (exit 2, nothing opened;
    argparse names the argument), the password's place being ``$PGPASSWORD`` or ``~/.pgpass``."""
    return ledger_option(text, env_too=False)


def run_ledger(args: argparse.Namespace, stderr: TextIO | None = None) -> int:
    """The ``ledger`` verb, with its errors turned into one-line messages and exit codes."""
    return run_client_verb(args, _ledger, stderr)


def _ledger(args: argparse.Namespace, console: Console) -> int:
    from ims_nb.exports import upkeep
    from ims_nb.exports.engines import ledger_url
    from ims_nb.exports.ledger import default_location
    from ims_nb.exports.schema import SCHEMA_VERSION

    locations = [args.source, args.destination] if args.action == "copy" else [args.ledger or default_location()]
    console.keep_secret(*(ledger_url(location).password for location in locations))
    if args.action == "copy":
        copied = upkeep.copy_ledger(args.source, args.destination)
        print(f"copied {copied['exports']} rows and {copied['leases']} leases from {upkeep.where(args.source)} to "
              f"{upkeep.where(args.destination)}", file=sys.stdout)  # fmt: skip
    elif args.action == "upgrade":
        before, after = upkeep.upgrade_ledger(locations[0])
        said = f"upgraded from schema version {before} to {after}" if before != after else f"at schema version {after}"
        print(f"ledger {upkeep.where(locations[0])}: {said}", file=sys.stdout)
    else:
        info = upkeep.ledger_info(locations[0])
        print(f"ledger: {info.where}\nengine: {info.engine}\nschema version: {info.schema_version} "
              f"(this ims-nb: {SCHEMA_VERSION})\nrows: {info.rows}", file=sys.stdout)  # fmt: skip
        for state, count in info.states.items():
            print(f"  {state}: {count}", file=sys.stdout)
        print(f"leases: {info.leases}", file=sys.stdout)
    return EXIT_OK
