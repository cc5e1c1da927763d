"""An embedded simulator of the IMS, OBS and IAM endpoints an image exporter touches.

It may import ``ims_nb.signing`` and nothing else from the package: its export judgement is its
own, so that "preflight agrees with the server" is a real test.
"""

from __future__ import annotations

from ims_nb.sim.app import Simulation
from ims_nb.sim.backend import SimBackend
from ims_nb.sim.clock import SimClock
from ims_nb.sim.server import SimInfo, Simulator, build_simulation
from ims_nb.sim.session import SimHandle, attach

__all__ = [
    "SimBackend",
    "SimClock",
    "SimHandle",
    "SimInfo",
    "Simulation",
    "Simulator",
    "attach",
    "build_simulation",
]
