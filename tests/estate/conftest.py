"""One multi-region simulator for the estate tests: three regions, a sub-project, a few hundred images each."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from ims_nb.sim import Simulator

REGIONS = ("cn-north-4", "ap-southeast-1", "ap-southeast-3")
IMAGES = 250


@pytest.fixture(scope="module")
def estate_sim() -> Iterator[Simulator]:
    """Manual clock; tests that add faults or latency clear them (``clear_region``)."""
    with Simulator(regions=REGIONS, seed=0, images=IMAGES, manual_clock=True) as simulator:
        yield simulator


def endpoint_of(sim: Simulator, region: str) -> str:
    assert sim.info.regions is not None
    return sim.info.regions[region]["endpoint"]


def count_requests(sim: Simulator) -> None:
    """A latency rule of 0 s on every region: its ``seen`` counts the service requests each region gets."""
    for region in REGIONS:
        rule = {"kind": "latency", "delay": 0, "count": None, "region": region}
        httpx.post(f"{sim.endpoint}/_sim/faults", json=rule).raise_for_status()


def requests_seen(sim: Simulator) -> dict[str, int]:
    """The requests each region's rules saw (the first rule of each region: ``count_requests``' counter)."""
    seen = {}
    for region in REGIONS:
        faults: list[dict[str, Any]] = httpx.get(f"{endpoint_of(sim, region)}/_sim/faults").json()["faults"]
        seen[region] = max((f["seen"] for f in faults if f["kind"] == "latency"), default=0)
    return seen


def clear_region(sim: Simulator, region: str) -> None:
    httpx.request("DELETE", f"{sim.endpoint}/_sim/faults", json={"region": region}).raise_for_status()
    httpx.post(f"{sim.endpoint}/_sim/latency", json={"seconds": 0, "region": region}).raise_for_status()
