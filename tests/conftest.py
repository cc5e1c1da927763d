"""Shared fixtures: a real simulator (uvicorn on a loopback port) and signed httpx clients."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from xdist.scheduler import LoadFileScheduling

import ims_nb
from ims_nb.client import ImsClient
from ims_nb.client.auth import AkSkAuth, ObsAuth
from ims_nb.exports.launch import launch
from ims_nb.exports.ledger import Ledger
from ims_nb.sim import Simulator
from tests.helpers import (
    AsyncRecordingTransport,
    RecordingTransport,
    RequestLog,
    SimTime,
    exportable_plan,
    is_exportable,
)
from tests.pg import pg_database, pg_password_role, pg_server, pg_url  # noqa: F401  (fixtures: the suite's PostgreSQL server)

#: Folders whose test files run one after another on one worker: each browser test drives chromium and a Jupyter
#: server, two at once on a 2-core machine time out.
ONE_WORKER = ("tests/browser/",)


class FileScheduling(LoadFileScheduling):
    """``--dist loadfile`` (a file's tests, a notebook's cells, on one worker in order), ``ONE_WORKER`` folders as
    one unit each, handed out first: xdist orders units by their number of tests, which would leave the few, long
    browser tests to one worker at the end while the other idles."""

    def _split_scope(self, nodeid: str) -> str:
        scope = super()._split_scope(nodeid)
        return next((folder for folder in ONE_WORKER if scope.startswith(folder)), scope)

    def _assign_work_unit(self, node: Any) -> None:
        for folder in ONE_WORKER:
            if folder in self.workqueue:
                self.workqueue.move_to_end(folder, last=False)
        super()._assign_work_unit(node)


@pytest.hookimpl(tryfirst=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> LoadFileScheduling | None:
    """The suite's scheduler for ``--dist loadfile`` (the default, pyproject.toml); xdist's own for the others."""
    return FileScheduling(config, log) if config.getvalue("dist") == "loadfile" else None


@pytest.fixture(scope="session")
def sim() -> Iterator[Simulator]:
    """One simulator for the session, seed 0, 200 images, manual clock. Reset it if you change it."""
    with Simulator(seed=0, images=200, manual_clock=True) as simulator:
        yield simulator


@pytest.fixture(scope="module")
def other_sim() -> Iterator[Simulator]:
    """Another simulator: same seed, so the same project id and access key as ``sim``; only its endpoint differs."""
    with Simulator(seed=0, images=20, manual_clock=True) as simulator:
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


# --- client tests: an isolated environment, recorded requests, a simulated clock ---------------------


@pytest.fixture()
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No credentials from this machine: no HUAWEICLOUD_SDK_* or IMS_NB_SIM, and a credentials file that is missing.

    Returns the (missing) credentials file path, for tests that write one.
    """
    for name in list(os.environ):
        if name.startswith("HUAWEICLOUD_SDK_"):
            monkeypatch.delenv(name)
    monkeypatch.delenv("IMS_NB_SIM", raising=False)
    path = tmp_path / "huaweicloud-credentials"
    monkeypatch.setenv("HUAWEICLOUD_SDK_CREDENTIALS_FILE", str(path))
    return path


@pytest.fixture()
def sent() -> RequestLog:
    """Where the clients of ``connect_sim`` record what they send."""
    return RequestLog()


@pytest.fixture()
def recording() -> type[RecordingTransport]:
    return RecordingTransport


@pytest.fixture()
def async_recording() -> type[AsyncRecordingTransport]:
    return AsyncRecordingTransport


@pytest.fixture()
def connect_sim(fresh_sim: Simulator, sent: RequestLog, clean_env: Path) -> Iterator[Callable[..., ImsClient]]:
    """``connect()`` to the reset simulator as the operator (AK/SK, project id, endpoint), recording into ``sent``.

    Keyword arguments override or add to those of ``connect``; a value of None drops that argument.
    """
    made: list[ImsClient] = []

    def make(**overrides: Any) -> ImsClient:
        info = fresh_sim.info
        arguments: dict[str, Any] = {
            "ak": info.ak,
            "sk": info.sk,
            "project_id": info.project_id,
            "endpoint": info.endpoint,
            "transport": RecordingTransport(sent),
        }
        arguments.update(overrides)
        client = ims_nb.connect(**{k: v for k, v in arguments.items() if v is not None})
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture()
def sim_client(connect_sim: Callable[..., ImsClient]) -> ImsClient:
    """A synchronous client of the reset simulator, recording into ``sent``."""
    return connect_sim()


@pytest.fixture()
def sim_users(control: httpx.Client) -> dict[str, Any]:
    """``GET /_sim/credentials``: region, project, domain name and the users with their passwords."""
    return dict(control.get("/credentials").json())


@pytest.fixture()
def sim_time(control: httpx.Client) -> SimTime:
    """A clock and a sleep for ``wait()`` that run the simulated clock instead of real time."""
    return SimTime(control)


@pytest.fixture()
def exportable(fresh_sim: Simulator, ims: httpx.Client) -> list[dict[str, Any]]:
    """Private images the simulator will export (normal and fast), smallest first."""
    images = ims.get("/v2/cloudimages", params={"__imagetype": "private", "limit": 1000}).json()["images"]
    found = [i for i in images if is_exportable(i, fresh_sim.info.project_id)]
    return sorted(found, key=lambda i: (int(i["__image_size"]), i["id"]))


@pytest.fixture()
def other_client(other_sim: Simulator, clean_env: Path) -> Iterator[ImsClient]:
    """A client of ``other_sim`` as its operator (the same project and access key as ``sim_client``)."""
    info = other_sim.info
    with ims_nb.connect(ak=info.ak, sk=info.sk, project_id=info.project_id, endpoint=info.endpoint) as client:
        yield client


@pytest.fixture()
def client(connect_sim: Callable[..., ImsClient]) -> ImsClient:
    """A client for planning and launching, recording into ``sent`` (another one than ``sim_client``)."""
    return connect_sim()


@pytest.fixture()
def rows(client: ImsClient) -> pd.DataFrame:
    """The exportable rows of a plan against the simulator, in listing order (normal exports, qcow2)."""
    return exportable_plan(client, key_template="exports/{id8}.{ext}")


@pytest.fixture()
def launch_first(rows: pd.DataFrame, client: ImsClient, ledger: Ledger) -> Callable[[int], pd.DataFrame]:
    """Launch the first ``n`` of ``rows`` with ``client`` into ``ledger`` (no pacing to speak of); returns the frame."""
    return lambda n: launch(rows.head(n), client=client, ledger=ledger, max_rate=1000)


@pytest.fixture()
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    """A new ledger file in tmp_path, closed after the test."""
    with Ledger(tmp_path / "ledger.sqlite") as opened:
        yield opened
