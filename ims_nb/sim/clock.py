"""The simulator's clock: real time times a scale factor, or a manual clock advanced on request."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

#: Where a manual clock starts, so that the same seed gives the same timestamps.
SIM_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class ClockState:
    """What persists of a clock: the simulated instant at a real instant, and the mode."""

    sim_anchor: float
    real_anchor: float
    scale: float
    manual: bool


class SimClock:
    """Simulated time. Job state is derived from it on read; nothing ticks in the background.

    Args:
        scale: simulated seconds per real second (ignored when ``manual``).
        manual: the clock stands still until ``advance`` is called.
        start: simulated start instant (defaults: ``SIM_EPOCH`` when manual, real now otherwise).
        real_time: source of real time in seconds, injectable for tests.
    """

    def __init__(
        self,
        *,
        scale: float = 60.0,
        manual: bool = False,
        start: datetime | None = None,
        real_time: Callable[[], float] = time.time,
    ) -> None:
        if scale <= 0:
            raise ValueError(f"time scale must be positive, not {scale}")
        self._real_time = real_time
        self._lock = threading.Lock()
        now = real_time()
        if start is None:
            start = SIM_EPOCH if manual else datetime.fromtimestamp(int(now), UTC)
        self._state = ClockState(start.timestamp(), now, scale, manual)

    @property
    def state(self) -> ClockState:
        return self._state

    @property
    def manual(self) -> bool:
        return self._state.manual

    @property
    def scale(self) -> float:
        return self._state.scale

    def restore(self, state: ClockState) -> None:
        """Continue a persisted clock. A scaled clock kept running while the simulator was down."""
        with self._lock:
            self._state = state

    def now(self) -> float:
        """The simulated time as a POSIX timestamp."""
        state = self._state
        if state.manual:
            return state.sim_anchor
        return state.sim_anchor + (self._real_time() - state.real_anchor) * state.scale

    def now_datetime(self) -> datetime:
        return datetime.fromtimestamp(self.now(), UTC)

    def advance(self, seconds: float) -> float:
        """Move simulated time forward (any mode); returns the new simulated time."""
        if seconds < 0:
            raise ValueError(f"the clock only moves forward, not by {seconds} s")
        with self._lock:
            current = self.now()
            self._state = ClockState(current + seconds, self._real_time(), self._state.scale, self._state.manual)
            return self._state.sim_anchor

    def configure(self, *, scale: float | None = None, manual: bool | None = None) -> None:
        """Change the mode or the scale from now on, keeping the current simulated instant."""
        if scale is not None and scale <= 0:
            raise ValueError(f"time scale must be positive, not {scale}")
        with self._lock:
            current = self.now()
            self._state = ClockState(
                current,
                self._real_time(),
                self._state.scale if scale is None else scale,
                self._state.manual if manual is None else manual,
            )


def iso_millis(timestamp: float) -> str:
    """``2024-11-06T06:46:51.929Z``: the job API's time format."""
    moment = datetime.fromtimestamp(timestamp, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def iso_seconds(timestamp: float) -> str:
    """``2018-09-06T14:03:27Z``: the image API's time format."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
