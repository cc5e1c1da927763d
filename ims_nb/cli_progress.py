"""A one-line progress counter on stderr for long command-line operations (no third-party library)."""

from __future__ import annotations

import argparse
import threading
import time
from collections.abc import Callable
from typing import TextIO

#: Seconds between redraws.
REDRAW_INTERVAL = 0.2
#: On a terminal (without ``--progress``) the line appears only once an operation has taken this long.
TERMINAL_DELAY = 0.5


def add_progress_options(parser: argparse.ArgumentParser) -> None:
    """``--progress`` / ``--quiet``: force the progress line on, or turn it off."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--progress", action="store_true", help="draw the progress line on stderr even when it is not a terminal"
    )
    group.add_argument("--quiet", "-q", action="store_true", help="no progress line")


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
