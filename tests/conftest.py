"""Shared fixtures: a real simulator (uvicorn on a loopback port) and signed httpx clients."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from ims_nb.auth import AkSkAuth, ObsAuth
from ims_nb.sim import Simulator


@pytest.fixture(scope="session")
def sim() -> Iterator[Simulator]:
    """One simulator for the session, seed 0, 200 images, manual clock. Reset it if you change it."""
    with Simulator(seed=0, images=200, manual_clock=True) as simulator:
        yield simulator


@pytest.fixture()
def fresh_sim(sim: Simulator) -> Iterator[Simulator]:
    """The session simulator, reset to its seed (no jobs, no faults, clock at the epoch) before the test."""
    httpx.post(f"{sim.endpoint}/_sim/reset", json={"seed": 0, "images": 200}).raise_for_status()
    httpx.post(f"{sim.endpoint}/_sim/throttle", json={"rate": None}).raise_for_status()
    yield sim


@pytest.fixture()
def ims(fresh_sim: Simulator) -> Iterator[httpx.Client]:
    """An httpx client signed as the demo operator, with its project id."""
    info = fresh_sim.info
    auth = AkSkAuth(info.ak, info.sk, project_id=info.project_id)
    with httpx.Client(base_url=info.endpoint, auth=auth) as client:
        yield client


@pytest.fixture()
def obs(fresh_sim: Simulator) -> Iterator[httpx.Client]:
    """An httpx client signing OBS requests (OBS mode) as the demo operator."""
    info = fresh_sim.info
    with httpx.Client(base_url=info.endpoint, auth=ObsAuth(info.ak, info.sk)) as client:
        yield client


@pytest.fixture()
def control(fresh_sim: Simulator) -> Iterator[httpx.Client]:
    """An httpx client for the simulator's control plane."""
    with httpx.Client(base_url=f"{fresh_sim.endpoint}/_sim") as client:
        yield client
