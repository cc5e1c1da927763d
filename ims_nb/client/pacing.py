"""How often to poll export jobs: the service's cadence, or the same cadence on a simulator's faster clock."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ims_nb.client.config import on_simulator
from ims_nb.errors import ConfigError, ImsNbError
from ims_nb.vocab import STALL_AFTER

if TYPE_CHECKING:
    from ims_nb.client.protocol import ConnectionLike

log = logging.getLogger("ims_nb")
#: The shortest gap between polls, whatever the simulator's speed: keeps a fast clock from flooding it.
MIN_INTERVAL = 0.05


@dataclass(frozen=True)
class Pacing:
    """A poll plan's cadence (``polling.PollPlan``): ``interval``, ``max_interval``, ``stall_after`` (seconds)."""

    interval: float = 5.0
    max_interval: float = 60.0
    stall_after: float = STALL_AFTER

    def scaled(self, scale: float) -> Pacing:
        """The same cadence in simulated time, on a clock running ``scale`` times faster than real time."""
        interval = max(MIN_INTERVAL, self.interval / scale)
        return Pacing(interval, max(interval, self.max_interval / scale), max(interval, self.stall_after / scale))

    def check(self) -> None:
        """Raise ``ConfigError`` unless ``0 < interval <= max_interval`` (a plan polls at this cadence)."""
        if not 0 < self.interval <= self.max_interval:
            raise ConfigError(f"need 0 < interval <= max_interval, not {self.interval} and {self.max_interval}")

    def as_kwargs(self) -> dict[str, float]:
        return {"interval": self.interval, "max_interval": self.max_interval, "stall_after": self.stall_after}


SERVICE = Pacing()


def clock_speed(client: ConnectionLike) -> float | None:
    """Simulated seconds per real second: 1 on an account, a simulator's clock scale, or None when its clock is
    manual or cannot be read (asked once, over loopback)."""
    if not on_simulator(client):
        return 1.0
    try:
        clock = client.simulator_clock()
    except ImsNbError as exc:
        log.info("the simulator's clock could not be read (%s); polling at the service's pace, ETAs in its time", exc)
        return None
    return None if clock.get("manual") else float(clock.get("scale") or 1.0)


def pacing_at(speed: float | None) -> Pacing:
    """The service's pacing on a clock running ``speed`` times real time (None, 1: the service's own)."""
    return SERVICE if speed is None or speed == 1.0 else SERVICE.scaled(speed)


def pacing_for(client: ConnectionLike) -> Pacing:
    """The service's pacing, or for a simulator its clock's scale applied to it (asked once, over loopback)."""
    return pacing_at(clock_speed(client))
