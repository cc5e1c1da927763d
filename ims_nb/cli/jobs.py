"""``ims-nb jobs``: the export ledger as a table, CSV or JSON, and ``--watch`` to follow live jobs to their end."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from ims_nb.cli._connect import (
    connect_estate_from_args,
    connect_from_args,
    home_client,
    ledger_missing,
    open_ledger,
    scoped_table,
    with_scope,
)
from ims_nb.cli._console import EXIT_INTERRUPTED, EXIT_OK, Console, run_client_verb
from ims_nb.cli._follow import follow, state_counts
from ims_nb.cli._ledgers import add_ledger_option, ledger_location
from ims_nb.cli._options import (
    HelpFormatter,
    add_connection_options,
    add_estate_options,
    add_watch_options,
    estate_chosen,
)
from ims_nb.cli._output import (
    OutputFormat,
    TableColumn,
    add_output_options,
    check_output,
    output_format_of,
    write_frame,
)
from ims_nb.cli._progress import add_progress_options, duration_text
from ims_nb.cli._verbs import VERBS
from ims_nb.vocab import DONE, LIVE, State

if TYPE_CHECKING:
    import pandas as pd

    from ims_nb.client.protocol import ClientLike
    from ims_nb.estate import Estate

#: ``--state`` also takes these groups.
STATE_GROUPS = {"live": LIVE, "done": DONE}

DESCRIPTION = """\
Show the export ledger: one row per export launched through it (by ims-nb export or ims_nb.launch), with \
its state, progress, duration (service times), throughput and errors. Without --watch nothing is sent: \
the table is what the ledger last recorded.

With --watch, the live jobs are followed to their end: each is polled (backing off while it does not \
move), its progress is recorded in the ledger, a SUCCESS is verified against the object in the bucket, \
and one line per job (bar, percent, ETA, STALLED when its progress has not moved for --stall-after \
seconds) is drawn on stderr when stderr is a terminal, or with --progress. The table follows when every \
job has ended. Ctrl-C stops watching, not the jobs: they go on in the cloud, and the next --watch \
follows them again."""
EPILOG = """\
examples:
  ims-nb jobs
  ims-nb jobs --state failed --state missing
  ims-nb jobs --user ims-operator-2 --host jupyter-7   # who launched what where (USER, HOST columns)
  ims-nb jobs --watch --sim - < sim.json
  ims-nb jobs --state done --output-format csv -o history.csv
  ims-nb jobs --regions all --watch       # every region and project of the estate, with a REGION column

States: submitting, submitted, running, succeeded, verified (the object is in the bucket), missing \
(SUCCESS without the object), failed, refused (the service said no; nothing started), unknown (the answer \
to the POST was lost: reconciled before anything is sent again). --state live is submitting, submitted, \
unknown and running; --state done is succeeded and verified.

USER is the IAM user who launched a job (the user behind the access key, or the password login's); HOST \
the machine it was launched on ($IMS_NB_HOST, else the host name). Every user's and host's jobs are shown \
unless --user or --host picks some.

The ledger is --ledger PATH|URL (a file, sqlite:///PATH or postgresql://USER@HOST/DB), else $IMS_NB_LEDGER, \
else ims-nb/ledger.sqlite under $XDG_DATA_HOME (~/.local/share).

Exit codes: 0 done, 130 Ctrl-C stopped watching (the jobs go on), 1 the service or the network failed \
(or --timeout passed with jobs still running), 2 bad arguments or configuration."""


def _state(text: str) -> str:
    if text not in tuple(State) and text not in STATE_GROUPS:
        names = ", ".join((*State, *STATE_GROUPS))
        raise argparse.ArgumentTypeError(f"invalid state {text!r}: choose from {names}")
    return text


def _percent(value: Any) -> str:
    return f"{value:.1f}%"


def _one_decimal(value: Any) -> str:
    return f"{value:,.1f}"


#: The table; the narrowest terminal still shows the row, the name, the state and the errors.
JOBS_TABLE = (
    TableColumn("row_id", "ROW", right=True),
    TableColumn("image_name", "NAME", min_width=16),
    TableColumn("format", "FORMAT", drop_order=3),
    TableColumn("size_gb", "SIZE_GB", drop_order=4, right=True, show=_one_decimal),
    TableColumn("state", "STATE"),
    TableColumn("process_percent", "PERCENT", drop_order=6, right=True, show=_percent),
    TableColumn("duration_s", "DURATION", drop_order=5, right=True, show=duration_text),
    TableColumn("throughput_gb_h", "GB/H", drop_order=2, right=True, show=_one_decimal),
    TableColumn("job_id", "JOB", drop_order=1),
    TableColumn("detail", "ERROR / NOTE", min_width=20),
    TableColumn("launched_user", "USER", drop_order=1),
    TableColumn("launched_host", "HOST", drop_order=0),
    TableColumn("belongs_to", "ACCOUNT", drop_order=0),
)


def add_jobs_parser(verbs: Any) -> None:
    """Register ``jobs`` on ``verbs``, the ``ims-nb`` parser's sub-parsers (an argparse private type)."""
    parser: argparse.ArgumentParser = verbs.add_parser(
        "jobs", help=VERBS["jobs"].help,
        description=DESCRIPTION, epilog=EPILOG, formatter_class=HelpFormatter,
    )  # fmt: skip
    add_ledger_option(parser)
    parser.add_argument(
        "--state", dest="states", action="extend", nargs="+", type=_state, default=[], metavar="S",
        help="only rows in these states (repeatable; also live, done)",
    )  # fmt: skip
    parser.add_argument("--user", metavar="NAME", help="only jobs this IAM user launched (the USER column)")
    parser.add_argument("--host", metavar="NAME", help="only jobs launched on this host (the HOST column)")
    watching = parser.add_argument_group("watching")
    add_watch_options(watching, "follow the live jobs to their end (polls the service), then print the table")
    output = parser.add_argument_group("output")
    add_output_options(output, "table (the main columns, fitted to the terminal; default), csv or json (every column "
                               "of ims_nb.jobs_frame)")  # fmt: skip
    add_progress_options(parser, "the job bars of --watch")
    add_connection_options(parser)
    add_estate_options(parser)
    parser.set_defaults(run=run_jobs)


def states_of(args: argparse.Namespace) -> list[str]:
    """The states ``--state`` names, groups expanded, in their life order (``ims_nb.vocab.State``)."""
    wanted = {state for name in args.states for state in STATE_GROUPS.get(name, (name,))}
    return [state.value for state in State if state in wanted]


def run_jobs(args: argparse.Namespace, stderr: TextIO | None = None) -> int:
    """The ``jobs`` verb, with its errors turned into one-line messages and exit codes."""
    return run_client_verb(args, _jobs, stderr)


def _jobs(args: argparse.Namespace, console: Console) -> int:
    from ims_nb.exports.history import jobs_of

    output_format = output_format_of(args)
    check_output(output_format, args.output)
    ledger_location(args)  # a bad --ledger is refused before connecting
    estate = None
    if estate_chosen(args):  # every scope's rows, each scope an account of its own
        with connect_estate_from_args(args, console) as estate:
            location = ledger_location(args, home_client(estate))
            frame, interrupted = _listed(location, estate, args, console)
            frame = _estate_rows(frame, location, estate)
    elif args.watch or args.sim is not None:  # the connection's ledger, its account's rows (others: belongs_to)
        with connect_from_args(args, console) as client:
            frame, interrupted = _listed(ledger_location(args, client), client, args, console)
    else:
        frame, interrupted = _listed(ledger_location(args), None, args, console)
    code = EXIT_INTERRUPTED if interrupted else EXIT_OK
    states = states_of(args)
    if states:
        frame = frame[frame["state"].isin(states)].reset_index(drop=True)
    frame = jobs_of(frame, user=args.user, host=args.host)
    shown = frame.assign(detail=_details(frame)) if output_format is OutputFormat.TABLE else frame
    write_frame(shown, output_format, args.output, sys.stdout, scoped_table(JOBS_TABLE, estate))
    console.notice(state_counts(frame, "job"))
    elsewhere = accounts_note(frame)
    if elsewhere:
        console.notice(elsewhere)
    return code


def _listed(
    location: str | Path, client: ClientLike | Estate | None, args: argparse.Namespace, console: Console
) -> tuple[pd.DataFrame, bool]:
    """The ledger's jobs frame (bound to ``client``'s account when given; followed with ``--watch``), and whether
    Ctrl-C stopped the watch."""
    from ims_nb.exports.history import jobs_frame
    from ims_nb.exports.ledger import Ledger

    if ledger_missing(location):
        console.notice(f"ims-nb jobs: no ledger at {location} yet: nothing was exported with it")
        with tempfile.TemporaryDirectory() as folder, Ledger(Path(folder) / "empty.sqlite") as empty:
            return jobs_frame(empty), False
    with open_ledger(client, location) as ledger:
        if args.watch and client is not None:  # a watch always connects (``_jobs``)
            return follow(ledger, client, args, console)
        return jobs_frame(ledger), False


def _estate_rows(frame: pd.DataFrame, location: str | Path, estate: Estate) -> pd.DataFrame:
    """The rows of the estate's scopes (each scope is an account: its endpoint and project), with where each is."""
    import pandas as pd

    from ims_nb.exports.identity import identity_of
    from ims_nb.exports.ledger import Ledger

    if ledger_missing(location):
        return with_scope(frame, pd.DataFrame({"region": [], "project_id": []}), estate)
    with Ledger(location) as ledger:
        rows = {row["row_id"]: row for row in ledger.rows(every_account=True)}
    identities = [found for client in estate.values() if (found := identity_of(client)) is not None]
    ours = [any(i.owns(rows[row_id]) for i in identities) for row_id in frame["row_id"]]
    frame = frame[ours].reset_index(drop=True)
    scopes = pd.DataFrame([(rows[row_id]["region"], rows[row_id]["project_id"]) for row_id in frame["row_id"]],
                          columns=["region", "project_id"])  # fmt: skip
    return with_scope(frame, scopes, estate)


def accounts_note(frame: pd.DataFrame) -> str | None:
    """``2 jobs belong to other accounts and were left alone: 2 of http://...``, when some do."""
    from ims_nb.exports.identity import ELSEWHERE

    prefix = f"{ELSEWHERE}: "
    elsewhere = frame.loc[frame["belongs_to"].fillna("").str.startswith(prefix), "belongs_to"].value_counts()
    if elsewhere.empty:
        return None
    parts = [f"{int(count)} of {str(whose).removeprefix(prefix)}" for whose, count in elsewhere.items()]
    total = int(elsewhere.sum())
    return f"{total} job{'s' if total != 1 else ''} belong to other accounts and were left alone: " + "; ".join(parts)


def _details(frame: pd.DataFrame) -> list[str | None]:
    """``CODE: reason`` for errors, else the row's note (reconciled, missing object, ...)."""
    rows = zip(frame["error_code"], frame["fail_reason"], frame["note"], strict=True)
    return [f"{_text(code)}: {_text(reason)}".strip(": ") if _text(code) or _text(reason) else _text(note)
            for code, reason, note in rows]  # fmt: skip


def _text(value: Any) -> str | None:
    return None if value is None or type(value).__name__ == "NAType" or value != value else str(value)
