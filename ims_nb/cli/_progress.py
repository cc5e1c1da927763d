"""Progress on stderr for long command-line operations (no third-party library): a one-line counter, and one
line per export job (``JobBars``)."""

from __future__ import annotations

import argparse
import shutil
import threading
import time
from collections.abc import Callable, Iterable
from typing import Protocol, TextIO

from ims_nb.vocab import LIVE

#: Seconds between redraws.
REDRAW_INTERVAL = 0.2
#: On a terminal (without ``--progress``) the line appears only once an operation has taken this long.
TERMINAL_DELAY = 0.5


def add_progress_options(parser: argparse.ArgumentParser, drawn: str = "the progress line") -> None:
    """``--progress`` / ``--quiet``: force the progress line (or what ``drawn`` names) on, or turn it off."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--progress", action="store_true", help=f"draw {drawn} on stderr even when it is not a terminal")
    group.add_argument("--quiet", "-q", action="store_true", help=f"do not draw {drawn}")


def progress_line(args: argparse.Namespace, stream: TextIO, label: str, noun: str) -> ProgressLine:
    """The line ``--progress``/``--quiet`` ask for: always with ``--progress``, never with ``--quiet``, else
    only when ``stream`` is a terminal and the operation lasts over ``TERMINAL_DELAY`` seconds."""
    enabled = not args.quiet and (bool(args.progress) or stream.isatty())
    return ProgressLine(stream, label, noun=noun, enabled=enabled, delay=0.0 if args.progress else TERMINAL_DELAY)


class ProgressLine:
    """Counts items and pages and redraws ``label: N items, P pages, T s elapsed`` in place on ``stream``.

    A background thread redraws every ``interval`` seconds, so the elapsed time moves while a page is
    on its way; nothing is drawn before ``delay`` seconds. Use it as a context manager: leaving it draws
    the final line (if any was drawn, or ``delay`` is 0) and ends it with a newline. A disabled line
    counts but never writes.
    """

    def __init__(
        self,
        stream: TextIO,
        label: str,
        *,
        noun: str = "items",
        enabled: bool = True,
        delay: float = 0.0,
        interval: float = REDRAW_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.items = 0
        self.pages = 0
        self.enabled = enabled
        self._stream = stream
        self._label = label
        self._noun = noun
        self._delay = delay
        self._interval = interval
        self._clock = clock
        self._started = clock()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._width = 0
        self._ticker: threading.Thread | None = None

    def __enter__(self) -> ProgressLine:
        if self.enabled:
            self._started = self._clock()
            self._ticker = threading.Thread(target=self._tick, name="ims-nb-progress", daemon=True)
            self._ticker.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def add(self, items: int = 1) -> None:
        self.items += items

    def page(self) -> None:
        self.pages += 1

    def text(self) -> str:
        elapsed = self._clock() - self._started
        rate = f", {self.items / elapsed:,.0f}/s" if elapsed >= 1 else ""
        pages = "page" if self.pages == 1 else "pages"
        return f"{self._label}: {self.items:,} {self._noun}, {self.pages:,} {pages}, {elapsed:.1f} s elapsed{rate}"

    def close(self) -> None:
        """Stop redrawing; draw the final line once and end it."""
        if self._stop.is_set():
            return
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
        if self.enabled and (self._width or self._delay <= 0):
            self._draw(final=True)

    def _tick(self) -> None:
        while not self._stop.wait(self._interval):
            if self._clock() - self._started >= self._delay:
                self._draw()

    def _draw(self, final: bool = False) -> None:
        with self._lock:
            text = self.text()
            padding = " " * max(0, self._width - len(text))
            self._width = len(text)
            self._stream.write("\r" + text + padding + ("\n" if final else ""))
            self._stream.flush()


# --- one line per export job ----------------------------------------------------------------------

#: Characters of a job's bar (between the brackets).
BAR_WIDTH = 20
#: The longest image name shown before the bar.
NAME_WIDTH = 32
#: Without a terminal, a job's line is written again each time its percent crosses a multiple of this.
APPEND_STEP = 10.0


class JobReport(Protocol):
    """What a job's line shows: ``ims_nb.exports.watch.Progress`` has these fields."""

    @property
    def row_id(self) -> int: ...
    @property
    def job_id(self) -> str | None: ...
    @property
    def image_name(self) -> str | None: ...
    @property
    def state(self) -> str: ...
    @property
    def percent(self) -> float | None: ...
    @property
    def eta_seconds(self) -> float | None: ...
    @property
    def stalled(self) -> bool: ...


def job_bars(args: argparse.Namespace, stream: TextIO) -> JobBars:
    """The bars ``--progress``/``--quiet`` ask for: drawn in place on a terminal, appended with ``--progress``
    elsewhere, never with ``--quiet`` (nor, without ``--progress``, when ``stream`` is not a terminal)."""
    terminal = stream.isatty()
    enabled = not args.quiet and (bool(args.progress) or terminal)
    size = shutil.get_terminal_size()
    return JobBars(stream, enabled=enabled, in_place=terminal, width=size.columns if terminal else None,
                   max_lines=max(3, size.lines - 2))  # fmt: skip


def duration_text(seconds: float | None) -> str:
    """``42s``, ``5m52s``, ``3h07m``, ``2d04h``; ``?`` when unknown."""
    if seconds is None or seconds != seconds or seconds < 0:
        return "?"
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d{whole % 86400 // 3600:02d}h"


def job_line(job: JobReport, name_width: int = NAME_WIDTH) -> str:
    """``  3  name  [#######.............]  35.0%  running    ETA 12m05s  STALLED`` (3: the ledger row)."""
    name = job.image_name or job.job_id or f"row {job.row_id}"
    if len(name) > name_width:
        name = name[: name_width - 1] + "~"
    percent = job.percent
    filled = 0 if percent is None else round(BAR_WIDTH * min(max(percent, 0.0), 100.0) / 100.0)
    bar = "#" * filled + "." * (BAR_WIDTH - filled)
    shown = "    ?%" if percent is None else f"{percent:5.1f}%"
    text = f"{job.row_id:>3}  {name:<{name_width}}  [{bar}] {shown}  {job.state:<10}"
    if job.state in LIVE:
        text += f"  ETA {duration_text(job.eta_seconds)}"
    if job.stalled:
        text += "  STALLED"
    return text.rstrip()


class JobBars:
    """One line per export job: name, bar, percent, state, ETA and a ``STALLED`` flag.

    In place (a terminal), the block of lines is redrawn on every update with ANSI cursor movement, at
    most ``max_lines`` of them: live jobs first, the rest summed up in one line. Otherwise (``--progress``
    into a file or a pipe), a job's line is appended when its state, its stall flag or its percent (in
    steps of ``APPEND_STEP``) changes. Notices go through ``print_above`` so that they do not tear the
    block. Use it as a context manager; a disabled one draws nothing.
    """

    def __init__(
        self,
        stream: TextIO,
        *,
        enabled: bool = True,
        in_place: bool = False,
        width: int | None = None,
        max_lines: int = 20,
    ) -> None:
        self.enabled = enabled
        self.jobs: dict[int, JobReport] = {}
        self._stream = stream
        self._in_place = in_place
        self._width = width
        self._max_lines = max(max_lines, 2)
        self._drawn = 0
        self._appended: dict[int, tuple[str, bool, float]] = {}
        self._lock = threading.RLock()

    def __enter__(self) -> JobBars:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def seed(self, jobs: Iterable[JobReport]) -> None:
        """Jobs known before the first update (shown in place, not appended)."""
        with self._lock:
            for job in jobs:
                self.jobs[job.row_id] = job
            if self.enabled and self._in_place and self.jobs:
                self._redraw()

    def update(self, job: JobReport) -> None:
        """A new observation of one job (``on_progress`` of ``ims_nb.watch``)."""
        with self._lock:
            self.jobs[job.row_id] = job
            if not self.enabled:
                return
            if self._in_place:
                self._redraw()
            elif self._worth_appending(job):
                self._write(job_line(job, self._name_width()) + "\n")

    def print_above(self, line: str) -> None:
        """Write a notice line without tearing the block of bars (it stays below the notice)."""
        with self._lock:
            if self.enabled and self._in_place and self._drawn:
                self._write(f"\x1b[{self._drawn}F\x1b[J")
                self._drawn = 0
                self._write(line + "\n")
                self._redraw()
            else:
                self._write(line + "\n")

    def close(self) -> None:
        """The block's final state stays on the terminal; nothing more is drawn."""
        with self._lock:
            if self.enabled and self._in_place and self.jobs:
                self._redraw()
            self.enabled = False

    def lines(self) -> list[str]:
        """The block: live jobs first (oldest first), then finished ones, at most ``max_lines`` lines."""
        ordered = sorted(self.jobs.values(), key=lambda j: (j.state not in LIVE, j.row_id))
        width = self._name_width()
        if len(ordered) > self._max_lines:
            shown, rest = ordered[: self._max_lines - 1], ordered[self._max_lines - 1 :]
            counts: dict[str, int] = {}
            for job in rest:
                counts[job.state] = counts.get(job.state, 0) + 1
            summary = ", ".join(f"{count} {state}" for state, count in sorted(counts.items()))
            return [*(job_line(j, width) for j in shown), f"... and {len(rest)} more jobs: {summary}"]
        return [job_line(j, width) for j in ordered]

    def _name_width(self) -> int:
        names = (job.image_name or job.job_id or f"row {job.row_id}" for job in self.jobs.values())
        return min(NAME_WIDTH, max(map(len, names), default=1))

    def _worth_appending(self, job: JobReport) -> bool:
        step = -1.0 if job.percent is None else float(int(job.percent // APPEND_STEP))
        key = (job.state, job.stalled, step)
        if self._appended.get(job.row_id) == key:
            return False
        self._appended[job.row_id] = key
        return True

    def _redraw(self) -> None:
        lines = self.lines()
        limit = None if self._width is None else max(self._width - 1, 10)
        text = "".join("\x1b[2K" + (line if limit is None else line[:limit]) + "\n" for line in lines)
        up = f"\x1b[{self._drawn}F" if self._drawn else ""
        self._write(up + text + ("\x1b[J" if len(lines) < self._drawn else ""))
        self._drawn = len(lines)

    def _write(self, text: str) -> None:
        self._stream.write(text)
        self._stream.flush()
