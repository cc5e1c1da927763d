"""``ims-nb jobs``: the export ledger as a table, CSV or JSON, and ``--watch`` to follow live jobs to their end."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, TextIO, cast

from ims_nb.cli._connect import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    Console,
    HelpFormatter,
    add_connection_options,
    connect_from_args,
    run_client_verb,
)
from ims_nb.cli._output import OutputFormat, TableColumn, check_output, write_frame
from ims_nb.cli._progress import JobBars, add_progress_options, duration_text, job_bars
from ims_nb.errors import ConfigError
from ims_nb.vocab import LIVE, STALL_AFTER

if TYPE_CHECKING:
    import pandas as pd

    from ims_nb.exports.ledger import Ledger

#: ``ims_nb.exports.ledger.State``, ``LIVE`` and ``DONE`` (a test keeps them equal): the ledger needs pandas, which
#: ``ims-nb --help`` must not import.
STATES = ("submitting", "submitted", "unknown", "refused", "running", "succeeded", "verified", "missing", "failed")
LIVE_STATES = ("submitting", "submitted", "unknown", "running")
DONE_STATES = ("succeeded", "verified")
#: ``--state`` also takes these groups.
STATE_GROUPS = {"live": LIVE_STATES, "done": DONE_STATES}
OUTPUT_FORMATS = (OutputFormat.TABLE, OutputFormat.CSV, OutputFormat.JSON)
#: The start of the warning ``ims_nb.watch`` logs when Ctrl-C stops it; the verbs say it their own way.
WATCH_STOPPED = "stopped watching"

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
  ims-nb jobs --watch --sim - < sim.json
  ims-nb jobs --state done --output-format csv -o history.csv

States: submitting, submitted, running, succeeded, verified (the object is in the bucket), missing \
(SUCCESS without the object), failed, refused (the service said no; nothing started), unknown (the answer \
to the POST was lost: reconciled before anything is sent again). --state live is submitting, submitted, \
unknown and running; --state done is succeeded and verified.

The ledger is --ledger PATH, else $IMS_NB_LEDGER, else ims-nb/ledger.sqlite under $XDG_DATA_HOME \
(~/.local/share).

Exit codes: 0 done, 130 Ctrl-C stopped watching (the jobs go on), 1 the service or the network failed \
(or --timeout passed with jobs still running), 2 bad arguments or configuration."""


def _state(text: str) -> str:
    if text not in STATES and text not in STATE_GROUPS:
        raise argparse.ArgumentTypeError(f"invalid state {text!r}: choose from {', '.join((*STATES, *STATE_GROUPS))}")
    return text


def positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text}")
    return value


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
)


def add_jobs_parser(verbs: Any) -> None:
    """Register ``jobs`` on ``verbs``, the ``ims-nb`` parser's sub-parsers (an argparse private type)."""
    parser: argparse.ArgumentParser = verbs.add_parser(
        "jobs", help="the export ledger: state, progress, duration, throughput, errors; --watch follows live jobs",
        description=DESCRIPTION, epilog=EPILOG, formatter_class=HelpFormatter,
    )  # fmt: skip
    add_ledger_option(parser)
    parser.add_argument(
        "--state", dest="states", action="extend", nargs="+", type=_state, default=[], metavar="S",
        help="only rows in these states (repeatable; also live, done)",
    )  # fmt: skip
    watching = parser.add_argument_group("watching")
    add_watch_options(watching, "follow the live jobs to their end (polls the service), then print the table")
    output = parser.add_argument_group("output")
    add_output_options(output, "table (the main columns, fitted to the terminal; default), csv or json (every column "
                               "of ims_nb.jobs_frame)")  # fmt: skip
    add_progress_options(parser, "the job bars of --watch")
    add_connection_options(parser)
    parser.set_defaults(run=run_jobs)


def add_ledger_option(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    parser.add_argument(
        "--ledger", type=Path, metavar="PATH",
        help="the ledger file (default: $IMS_NB_LEDGER, else ims-nb/ledger.sqlite under $XDG_DATA_HOME)",
    )  # fmt: skip


def add_watch_options(group: argparse._ArgumentGroup, watch_help: str) -> None:
    group.add_argument("--watch", action="store_true", help=watch_help)
    group.add_argument("--timeout", type=positive_seconds, metavar="SECONDS",
                       help="with --watch: stop after SECONDS (exit 1); the jobs go on")  # fmt: skip
    group.add_argument(
        "--stall-after", type=positive_seconds, default=STALL_AFTER, metavar="SECONDS",
        help=f"with --watch: flag a job STALLED when its progress has not moved for SECONDS (default {STALL_AFTER:g})",
    )  # fmt: skip


def add_output_options(group: argparse._ArgumentGroup, format_help: str) -> None:
    group.add_argument(
        "--output-format", choices=[f.value for f in OUTPUT_FORMATS], default=None,
        help=format_help + "; with -o FILE.csv or FILE.json, the extension chooses",
    )  # fmt: skip
    group.add_argument("-o", "--output", type=Path, metavar="FILE", help="write to FILE instead of stdout")


def output_format_of(args: argparse.Namespace) -> OutputFormat:
    """``--output-format``, else the extension of ``-o`` (``.csv``, ``.json``), else the table."""
    if args.output_format:
        return OutputFormat(args.output_format)
    suffix = args.output.suffix.lower() if args.output is not None else ""
    return {".csv": OutputFormat.CSV, ".json": OutputFormat.JSON}.get(suffix, OutputFormat.TABLE)


def ledger_path(args: argparse.Namespace) -> Path:
    """``--ledger``, else ``ims_nb.exports.ledger.default_path()`` (``$IMS_NB_LEDGER``, else the user's data folder)."""
    if args.ledger is not None:
        path: Path = args.ledger
        if path.is_dir():
            raise ConfigError(f"--ledger {path}: is a folder; give the ledger's file")
        return path
    from ims_nb.exports.ledger import default_path

    return default_path()


def states_of(args: argparse.Namespace) -> list[str]:
    """The states ``--state`` names, groups expanded, in ``STATES`` order."""
    wanted = {state for name in args.states for state in STATE_GROUPS.get(name, (name,))}
    return [state for state in STATES if state in wanted]


def run_jobs(args: argparse.Namespace, stderr: TextIO | None = None) -> int:
    """The ``jobs`` verb, with its errors turned into one-line messages and exit codes."""
    return run_client_verb(args, _jobs, stderr)


def _jobs(args: argparse.Namespace, console: Console) -> int:
    try:
        from ims_nb.exports.ledger import Ledger
        from ims_nb.exports.watch import jobs_frame
    except ImportError as exc:
        raise ConfigError(f"ims-nb jobs needs {exc.name}: pip install 'ims-nb[lab]'") from None
    output_format = output_format_of(args)
    check_output(output_format, args.output)
    path = ledger_path(args)
    code = EXIT_OK
    if not path.exists():
        console.notice(f"ims-nb jobs: no ledger at {path} yet: nothing was exported with it")
        with tempfile.TemporaryDirectory() as folder, Ledger(Path(folder) / "empty.sqlite") as empty:
            frame = jobs_frame(empty)
    elif args.watch:
        with connect_from_args(args, console) as client, Ledger(path) as ledger:
            frame, interrupted = follow(ledger, client, args, console)
        code = EXIT_INTERRUPTED if interrupted else EXIT_OK
    else:
        with Ledger(path) as ledger:
            frame = jobs_frame(ledger)
    states = states_of(args)
    if states:
        frame = frame[frame["state"].isin(states)].reset_index(drop=True)
    shown = frame.assign(detail=_details(frame)) if output_format is OutputFormat.TABLE else frame
    write_frame(shown, output_format, args.output, sys.stdout, JOBS_TABLE)
    console.notice(state_counts(frame, "job"))
    return code


def _details(frame: pd.DataFrame) -> list[str | None]:
    """``CODE: reason`` for errors, else the row's note (reconciled, missing object, ...)."""
    rows = zip(frame["error_code"], frame["fail_reason"], frame["note"], strict=True)
    return [f"{_text(code)}: {_text(reason)}".strip(": ") if _text(code) or _text(reason) else _text(note)
            for code, reason, note in rows]  # fmt: skip


def _text(value: Any) -> str | None:
    return None if value is None or type(value).__name__ == "NAType" or value != value else str(value)


def state_counts(frame: pd.DataFrame, noun: str) -> str:
    """``3 jobs: 2 verified, 1 failed`` (states in ledger order)."""
    counts = frame["state"].value_counts()
    parts = [f"{int(counts[state])} {state}" for state in STATES if state in counts.index]
    nouns = noun if len(frame) == 1 else noun + "s"
    return f"{len(frame)} {nouns}" + (": " + ", ".join(parts) if parts else "")


# --- watching -------------------------------------------------------------------------------------


def follow(ledger: Ledger, client: Any, args: argparse.Namespace, console: Console) -> tuple[pd.DataFrame, bool]:
    """``ims_nb.watch`` with one bar per job on the console's stream; returns ``jobs_frame`` and whether Ctrl-C
    stopped the watch (the verb then says that the jobs go on, once, and exits 130).

    Raises:
        WaitTimeoutError: ``--timeout`` passed with jobs still running.
    """
    from ims_nb.exports.watch import Progress, jobs_frame, watch

    bars = job_bars(args, console.stream)
    seeds = [Progress(row["row_id"], row["job_id"], row["image_name"], row["state"], row["process_percent"], None,
                      False) for row in ledger.rows(LIVE)]  # fmt: skip
    interrupted = threading.Event()
    with bars, _notices_above(console, bars), _sigint_sets(interrupted), _watch_stop_sets(interrupted):
        bars.seed(seeds)
        try:
            frame = watch(ledger, client=client, timeout=args.timeout, on_progress=bars.update,
                          stall_after=args.stall_after)  # fmt: skip
        except KeyboardInterrupt:
            interrupted.set()
            frame = jobs_frame(ledger)
    if interrupted.is_set():
        live = int(frame["state"].isin(LIVE_STATES).sum())
        console.notice(f"ims-nb {console.verb}: stopped watching (Ctrl-C): {live} export job(s) go on in the cloud; "
                       "`ims-nb jobs --watch` follows them again")  # fmt: skip
    return frame, interrupted.is_set()


@contextmanager
def _sigint_sets(flag: threading.Event) -> Iterator[None]:
    """Ctrl-C still raises KeyboardInterrupt (``watch`` catches it and returns), and also sets ``flag``."""

    def handler(signum: int, frame: FrameType | None) -> None:
        flag.set()
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread: no handler, only the KeyboardInterrupt that escapes watch
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous if previous is not None else signal.default_int_handler)


@contextmanager
def _watch_stop_sets(flag: threading.Event) -> Iterator[None]:
    """The "stopped watching" warning of ``ims_nb.watch`` sets ``flag`` instead of being shown: ``follow`` says
    it, with the way to resume."""

    def keep(record: logging.LogRecord) -> bool:
        if str(record.msg).startswith(WATCH_STOPPED):
            flag.set()
            return False
        return True

    logger = logging.getLogger("ims_nb")
    logger.addFilter(keep)
    try:
        yield
    finally:
        logger.removeFilter(keep)


@contextmanager
def _notices_above(console: Console, bars: JobBars) -> Iterator[None]:
    """While the bars are drawn, the console's notices go above them."""
    original = console.stream
    console.stream = cast(TextIO, _AboveBars(bars, original))
    try:
        yield
    finally:
        console.stream = original


class _AboveBars:
    """A text stream that hands each complete line to ``JobBars.print_above``."""

    def __init__(self, bars: JobBars, stream: TextIO) -> None:
        self._bars = bars
        self._stream = stream
        self._pending = ""

    def write(self, text: str) -> int:
        self._pending += text
        *lines, self._pending = self._pending.split("\n")
        for line in lines:
            self._bars.print_above(line)
        return len(text)

    def flush(self) -> None:
        self._stream.flush()

    def isatty(self) -> bool:
        return self._stream.isatty()
