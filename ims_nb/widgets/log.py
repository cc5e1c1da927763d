"""The log panel every widget carries: what a callback did, and every error it met, visible in the widget."""

from __future__ import annotations

import functools
import html
import logging
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Concatenate, ParamSpec, Protocol, TypeVar

import ipywidgets as w

from ims_nb.errors import ImsNbError, mask_secrets

log = logging.getLogger("ims_nb")
P = ParamSpec("P")
R = TypeVar("R")
#: The newest entries kept (older ones are dropped, oldest first, and counted).
MAX_ENTRIES = 200


class Level(StrEnum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


_COLOURS = {Level.INFO: "#555555", Level.WARNING: "#8a6d00", Level.ERROR: "#b00020"}


@dataclass(frozen=True)
class Entry:
    level: Level
    text: str


class LogPanel(w.HTML):  # type: ignore[misc]
    """A list of notes and errors, newest last; hidden while empty."""

    def __init__(self) -> None:
        super().__init__(value="", layout=w.Layout(display="none", max_height="12em", overflow="auto"))
        self.entries: list[Entry] = []
        self.dropped = 0
        self.add_class("ims-nb-log")

    def info(self, text: str) -> None:
        self._add(Level.INFO, text)

    def warning(self, text: str) -> None:
        self._add(Level.WARNING, text)

    def error(self, text: str) -> None:
        self._add(Level.ERROR, text)

    @property
    def errors(self) -> list[str]:
        return [e.text for e in self.entries if e.level is Level.ERROR]

    def forget(self, action: str) -> None:
        """Remove the errors an action reported (``reports_errors``): their cause is gone; other entries stay."""
        kept = [e for e in self.entries if not (e.level is Level.ERROR and e.text.startswith(failed(action)))]
        if len(kept) != len(self.entries):
            self.entries[:] = kept
            self._render()

    def clear(self) -> None:
        self.entries.clear()
        self.dropped = 0
        self._render()

    def _add(self, level: Level, text: str) -> None:
        self.entries.append(Entry(level, mask_secrets(text)))
        if len(self.entries) > MAX_ENTRIES:
            self.dropped += len(self.entries) - MAX_ENTRIES
            del self.entries[:-MAX_ENTRIES]
        self._render()

    def _render(self) -> None:
        lines = [f"<div style='color:{_COLOURS[e.level]}'>{e.level.value}: {html.escape(e.text)}</div>"
                 for e in self.entries]  # fmt: skip
        if self.dropped:
            lines.insert(0, f"<div>({self.dropped} older entries dropped)</div>")
        self.value = "".join(lines)
        self.layout.display = "block" if self.entries else "none"


def describe(exc: BaseException) -> str:
    """An error as a user should read it: ours by their message, anything else with its type and origin."""
    if isinstance(exc, ImsNbError):
        return str(exc)
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" (at {frames[-1].name}, {frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno})" if frames else ""
    return f"unexpected {type(exc).__name__}: {exc}{where}"


class HasLog(Protocol):
    log_panel: LogPanel  # not ``log``: every widget already has a ``log`` trait (a logging.Logger)


S = TypeVar("S", bound=HasLog)


def failed(action: str) -> str:
    """How an action's error entries begin."""
    return f"{action} failed: "


def reports_errors(
    action: str, *, clears: bool = False
) -> Callable[[Callable[Concatenate[S, P], R]], Callable[Concatenate[S, P], R | None]]:
    """Decorate a widget's event handler: an exception it raises is shown in the widget's log panel.

    With ``clears``, a run that succeeds removes the errors this action reported before (their cause is gone).
    """

    def decorate(handler: Callable[Concatenate[S, P], R]) -> Callable[Concatenate[S, P], R | None]:
        @functools.wraps(handler)
        def guarded(self: S, *args: P.args, **kwargs: P.kwargs) -> R | None:
            try:
                result = handler(self, *args, **kwargs)
            except Exception as exc:  # a callback's error has nowhere else to go
                _report(self, action, exc)
                return None
            if clears:
                self.log_panel.forget(action)
            return result

        return guarded  # type: ignore[return-value]  # functools.wraps loses the Concatenate form

    return decorate


async def run_reporting(owner: HasLog, action: str, work: Awaitable[R]) -> R | None:
    """Await ``work`` (an asyncio task's body); an exception is shown in ``owner.log_panel``."""
    try:
        return await work
    except Exception as exc:
        _report(owner, action, exc)
        return None


def _report(owner: HasLog, action: str, exc: BaseException) -> None:
    text = failed(action) + describe(exc)
    owner.log_panel.error(text)
    log.warning("%s", mask_secrets(text), exc_info=not isinstance(exc, ImsNbError))
