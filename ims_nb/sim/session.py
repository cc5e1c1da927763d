"""A handle on a running simulator, for notebooks: the one ``make lab`` started, or an embedded one."""

from __future__ import annotations

import json
import os
from typing import Any

import httpx

from ims_nb.sim.server import SimInfo, Simulator

#: Set by ``ims-nb lab`` to the simulator's JSON line, so notebooks talk to that simulator.
ENV_VAR = "IMS_NB_SIM"


class SimHandle:
    """Reach a simulator over HTTP (its control plane), whether it runs in this process or not."""

    def __init__(self, info: SimInfo, embedded: Simulator | None = None) -> None:
        self.info = info
        self._embedded = embedded

    @property
    def endpoint(self) -> str:
        return self.info.endpoint

    def _control(self, method: str, action: str, body: dict[str, Any] | None = None) -> Any:
        response = httpx.request(method, f"{self.info.endpoint}/_sim/{action}", json=body, timeout=30)
        response.raise_for_status()
        return response.json()

    def state(self) -> dict[str, Any]:
        """Seed, region, clock, buckets, objects and every job, as the simulator sees them now."""
        return dict(self._control("GET", "state"))

    def summary(self) -> dict[str, Any]:
        """The world in a few numbers: what a notebook shows first."""
        state = self.state()
        return {
            "region": state["region"],
            "images": state["images"],
            "buckets": {b["name"]: f"{b['storage_class']} in {b['location']}" for b in state["buckets"]},
            "objects": len(state["objects"]),
            "jobs": len(state["jobs"]),
            "clock": "manual" if state["clock"]["manual"] else f"x{state['clock']['scale']:g}",
        }

    def advance(self, seconds: float) -> str:
        """Move the simulated clock forward; returns the new simulated time."""
        return str(self._control("POST", "clock", {"advance": seconds})["now"])

    def reset(self, seed: int | None = None, images: int | None = None) -> None:
        self._control("POST", "reset", {"seed": seed, "images": images})

    def close(self) -> None:
        if self._embedded is not None:
            self._embedded.stop()
            self._embedded = None
            if os.environ.get(ENV_VAR) == json.dumps(self.info.as_json_dict()):
                del os.environ[ENV_VAR]

    def __repr__(self) -> str:
        where = "embedded" if self._embedded is not None else "external"
        return f"SIMULATOR ({where}) at {self.info.endpoint}, region {self.info.region}"


def attach(*, seed: int = 0, images: int = 200, manual_clock: bool = False, time_scale: float = 60.0) -> SimHandle:
    """The simulator ``make lab`` started (``$IMS_NB_SIM``), else a new one in a background thread.

    A new one is announced in ``$IMS_NB_SIM`` too, so ``ims_nb.connect()`` in the same kernel talks to it.
    """
    line = os.environ.get(ENV_VAR)
    if line:
        data = json.loads(line)
        return SimHandle(SimInfo(**{k: data[k] for k in ("endpoint", "region", "project_id", "ak", "sk")}))
    simulator = Simulator(seed=seed, images=images, manual_clock=manual_clock, time_scale=time_scale).start()
    os.environ[ENV_VAR] = json.dumps(simulator.info.as_json_dict())
    return SimHandle(simulator.info, simulator)
