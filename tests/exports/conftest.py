"""Shared fixtures of the export tests: where a ledger lives on each engine, and a three-region simulator with a
sub-project, its clients and estate frame."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

import ims_nb
from ims_nb.client import ImsClient
from ims_nb.sim import Simulator
from ims_nb.vocab import Scope

REGIONS = ("cn-north-4", "ap-southeast-1", "ap-southeast-3")
#: The engines the ledger's tests run on: a SQLite file, and a database of its own on the suite's PostgreSQL server.
ENGINES = ("sqlite", "postgresql")


@pytest.fixture(params=ENGINES)
def where(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a new, empty ledger lives on each engine: a file's path, or a PostgreSQL database's URL."""
    if request.param == "sqlite":
        return str(tmp_path / "ledger.sqlite")
    url: str = request.getfixturevalue("pg_database")
    return url


@pytest.fixture(scope="module")
def estate_sim() -> Iterator[Simulator]:
    """Three regions (a sub-project ``cn-north-4_dev`` in the first), 30 images each, manual clock."""
    with Simulator(regions=REGIONS, seed=0, images=30, manual_clock=True) as simulator:
        yield simulator


@pytest.fixture(scope="module")
def estate_clients(estate_sim: Simulator) -> Iterator[dict[Scope, ImsClient]]:
    """One client per (region, project_id), each at its region's endpoint (what ``connect_estate`` holds)."""
    info = estate_sim.info
    assert info.regions is not None and info.projects is not None
    clients = {
        (p["region"], p["id"]): ims_nb.connect(
            p["region"], ak=info.ak, sk=info.sk, project_id=p["id"], endpoint=info.regions[p["region"]]["endpoint"]
        )  # fmt: skip
        for p in info.projects
    }
    yield clients
    for client in clients.values():
        client.close()


def project_names(estate_sim: Simulator) -> dict[str, str]:
    assert estate_sim.info.projects is not None
    return {p["id"]: p["name"] for p in estate_sim.info.projects}


@pytest.fixture(scope="module")
def estate_images(estate_sim: Simulator, estate_clients: dict[Scope, ImsClient]) -> pd.DataFrame:
    """The estate frame: each client's private images with ``region``, ``project_id`` and ``project_name``."""
    names = project_names(estate_sim)
    parts = [client.images(imagetype="private").assign(region=region, project_id=project_id,
                                                       project_name=names[project_id])
             for (region, project_id), client in estate_clients.items()]  # fmt: skip
    return pd.concat(parts, ignore_index=True)


def region_jobs(estate_sim: Simulator, region: str) -> list[dict[str, Any]]:
    """Every job of one region, as its simulator records it (``/_sim/state`` at the region's endpoint)."""
    assert estate_sim.info.regions is not None
    endpoint = estate_sim.info.regions[region]["endpoint"]
    jobs: list[dict[str, Any]] = httpx.get(f"{endpoint}/_sim/state").raise_for_status().json()["jobs"]
    return jobs


class EstateClock:
    """A watch's clock for the estate: ``sleep`` advances every region's manual clock instead of waiting."""

    def __init__(self, estate_sim: Simulator) -> None:
        assert estate_sim.info.regions is not None
        self.endpoints = [r["endpoint"] for r in estate_sim.info.regions.values()]
        self.now = 0.0
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            return
        with self._lock:
            self.now += seconds
            for endpoint in self.endpoints:
                httpx.post(f"{endpoint}/_sim/clock", json={"advance": seconds}).raise_for_status()
