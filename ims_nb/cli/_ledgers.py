"""The ledger option verbs share: ``--ledger PATH|URL`` checked as it is read, and which ledger a verb opens."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from ims_nb.errors import ConfigError

if TYPE_CHECKING:
    from ims_nb.client.protocol import ConnectionLike

LEDGER_HELP = (
    "the ledger: a file's path, sqlite:///PATH or postgresql://USER@HOST/DB (its password from $PGPASSWORD or "
    "~/.pgpass, never on the command line; default: {default})"
)
LEDGER_DEFAULT = "$IMS_NB_LEDGER, else ims-nb/ledger.sqlite under $XDG_DATA_HOME"


def add_ledger_option(parser: argparse.ArgumentParser | argparse._ArgumentGroup, default: str = LEDGER_DEFAULT) -> None:
    """``--ledger PATH|URL`` (``ledger_option``); ``default`` says in ``--help`` which ledger is used without it."""
    parser.add_argument("--ledger", type=ledger_option, metavar="PATH|URL", help=LEDGER_HELP.format(default=default))


def ledger_option(text: str, *, env_too: bool = True) -> str | Path:
    """``--ledger``: a file's path, or a database URL checked at once (read, an engine ims-nb runs on, no password:
    like an SK, a password is never a command-line option, where ``ps`` and the shell's history would show it).
    ``env_too``: the refusal offers ``$IMS_NB_LEDGER`` too (for an argument that defaults to it)."""
    from ims_nb.exports import engines  # SQLAlchemy: only for a verb given a URL

    if not engines.is_url(text):
        return Path(text)
    try:
        url = engines.ledger_url(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    except ValueError:  # a port that is no number: argparse would echo the text, and a password in it
        raise argparse.ArgumentTypeError(
            "cannot read the ledger URL (expected postgresql://USER@HOST[:PORT]/DB)"
        ) from None
    if url.password:
        raise argparse.ArgumentTypeError(
            f"{engines.shown(url)}: a password is never a command-line option; put it in $PGPASSWORD or ~/.pgpass"
            + (" (or the whole URL in $IMS_NB_LEDGER)" if env_too else "")
        )
    return text


def ledger_location(args: argparse.Namespace, client: ConnectionLike | None = None) -> str | Path:
    """``--ledger``, else the client's ledger (``ims_nb.exports.ledger.location_for``: a simulator's is its own,
    never the real one), else ``default_location()`` (``$IMS_NB_LEDGER``, a path or URL, else the user's data
    folder)."""
    if args.ledger is not None:
        location: str | Path = args.ledger
        if isinstance(location, Path) and location.is_dir():
            raise ConfigError(f"--ledger {location}: is a folder; give the ledger's file")
        return location
    from ims_nb.exports.ledger import default_location, location_for

    return default_location() if client is None else location_for(client)


def kernel_ledger(args: argparse.Namespace) -> str | None:
    """``--ledger`` as the kernels a verb starts get it in their environment: a file's path made absolute (they run
    in another folder), a URL as given; None when not given."""
    if args.ledger is None:
        return None
    return str(args.ledger.resolve()) if isinstance(args.ledger, Path) else str(args.ledger)
