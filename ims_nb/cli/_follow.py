"""Following export jobs, as ``jobs --watch`` and ``export --watch`` do: bars on stderr, Ctrl-C stops watching."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING, TextIO, cast

from ims_nb.cli._console import Console
from ims_nb.cli._progress import JobBars, job_bars
from ims_nb.vocab import LIVE, Scope, State

if TYPE_CHECKING:
    import pandas as pd

    from ims_nb.client.protocol import ClientLike
    from ims_nb.exports.ledger import Ledger

#: The start of the warning ``ims_nb.watch`` logs when Ctrl-C stops it; the verbs say it their own way.
WATCH_STOPPED = "stopped watching"


def state_counts(frame: pd.DataFrame, noun: str) -> str:
    """``3 jobs: 2 verified, 1 failed`` (states in ledger order)."""
    counts = frame["state"].value_counts()
    parts = [f"{int(counts[state])} {state}" for state in State if state in counts.index]
    nouns = noun if len(frame) == 1 else noun + "s"
    return f"{len(frame)} {nouns}" + (": " + ", ".join(parts) if parts else "")


def follow(
    ledger: Ledger, client: ClientLike | Mapping[Scope, ClientLike], args: argparse.Namespace, console: Console
) -> tuple[pd.DataFrame, bool]:
    """``ims_nb.watch`` with one bar per job on the console's stream; returns ``jobs_frame`` and whether Ctrl-C
    stopped the watch (the verb then says that the jobs go on, once, and exits 130). An estate's clients follow
    each scope's rows at its own endpoint.

    Raises:
        WaitTimeoutError: ``--timeout`` passed with jobs still running.
    """
    from ims_nb.exports.history import jobs_frame
    from ims_nb.exports.watch import Progress, watch

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
        live = int(frame["state"].isin(LIVE).sum())
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
