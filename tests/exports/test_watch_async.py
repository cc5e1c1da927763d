"""``watch_async``: the ledger watch with an ``AsyncImsClient``, in-process (ASGI) and over loopback HTTP."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

import ims_nb
from ims_nb import AsyncImsClient, ImsClient
from ims_nb.errors import WaitTimeoutError
from ims_nb.exports.history import HISTORY_COLUMNS
from ims_nb.exports.launch import launch
from ims_nb.exports.ledger import Ledger
from ims_nb.exports.watch import Progress, watch, watch_async
from ims_nb.frames import JOB_COLUMNS
from ims_nb.sim import Simulator
from ims_nb.sim.jobs import plan_job
from ims_nb.vocab import LIVE, State
from tests.helpers import BUCKET

GiB = 1024**3
COARSE: dict[str, Any] = {"interval": 300.0, "max_interval": 1800.0, "max_rate": 1000.0}
MODES = ["asgi", "loopback"]


class AsyncSimTime:
    """The async twin of ``sim_time``: a clock, and an awaitable sleep that advances the simulator's manual clock."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        assert seconds >= 0, seconds
        self.sleeps.append(seconds)
        if seconds > 0:
            self.now += seconds
            async with httpx.AsyncClient(base_url=f"{self.endpoint}/_sim") as control:
                (await control.post("/clock", json={"advance": seconds})).raise_for_status()
        else:
            await asyncio.sleep(0)


class InFlight(httpx.AsyncBaseTransport):
    """Counts the job polls in flight at once (each held for a real moment so that overlaps show)."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.now = 0
        self.most = 0
        self.polls = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if "/cloudimages/job/" not in request.url.path:
            return await self.inner.handle_async_request(request)
        self.polls += 1
        self.now += 1
        self.most = max(self.most, self.now)
        try:
            await asyncio.sleep(0.005)
            return await self.inner.handle_async_request(request)
        finally:
            self.now -= 1

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.fixture()
def atime(fresh_sim: Simulator) -> AsyncSimTime:
    return AsyncSimTime(fresh_sim.endpoint)


@pytest.fixture()
def connect_async_sim(
    fresh_sim: Simulator, sent: Any, async_recording: Callable[..., httpx.AsyncBaseTransport]
) -> Callable[..., AsyncImsClient]:
    """``connect_async()`` to the reset simulator: in-process ("asgi") or over "loopback" HTTP, recording."""

    def make(mode: str, wrap: Callable[[httpx.AsyncBaseTransport], httpx.AsyncBaseTransport] | None = None) -> Any:
        info = fresh_sim.info
        inner: httpx.AsyncBaseTransport = (
            httpx.ASGITransport(app=fresh_sim.simulation) if mode == "asgi" else httpx.AsyncHTTPTransport()
        )
        transport = async_recording(sent, wrap(inner) if wrap else inner)
        return ims_nb.connect_async(ak=info.ak, sk=info.sk, project_id=info.project_id, endpoint=info.endpoint,
                                    transport=transport)  # fmt: skip

    return make


def run(aclient: AsyncImsClient, body: Callable[[AsyncImsClient], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        async with aclient:
            return await body(aclient)

    return asyncio.run(main())


def watch_to_end(aclient: AsyncImsClient, ledger: Ledger, atime: AsyncSimTime, **options: Any) -> pd.DataFrame:
    async def body(c: AsyncImsClient) -> pd.DataFrame:
        return await watch_async(ledger, client=c, clock=atime, sleep=atime.sleep, **(COARSE | options))

    result: pd.DataFrame = run(aclient, body)
    return result


def failing_sequences(upto: int) -> list[int]:
    image = {"id": "x", "name": "x", "__image_size": GiB}
    return [n for n in range(1, upto + 1)
            if plan_job(seed=0, sequence=n, image=image, bucket=BUCKET, key="k", file_format="qcow2", quick=False,
                        now=0.0).fail_code]  # fmt: skip


@pytest.mark.parametrize("mode", MODES)
def test_watch_async_follows_every_job_to_the_end_and_verifies_each_object(
    launch_first: Callable[[int], pd.DataFrame],
    client: ImsClient,
    ledger: Ledger,
    atime: AsyncSimTime,
    connect_async_sim: Callable[..., AsyncImsClient],
    mode: str,
) -> None:
    launch_first(6)  # seed 0: job sequences 1-6 succeed
    seen: list[Progress] = []

    frame = watch_to_end(connect_async_sim(mode), ledger, atime, on_progress=seen.append)

    assert not ledger.rows(LIVE)
    assert list(frame.columns) == list(HISTORY_COLUMNS)
    assert list(frame["state"]) == ["verified"] * 6
    for row in ledger.rows():
        assert row["status"] == "SUCCESS" and row["process_percent"] == 100.0
        assert row["object_size"] == client.object_size(BUCKET, row["bucket_url"].partition(":")[2])
    assert {p.job_id for p in seen} == {r["job_id"] for r in ledger.rows()}
    assert atime.now > 0


def test_watch_async_records_the_same_as_watch_for_the_same_seed(
    rows: pd.DataFrame,
    client: ImsClient,
    tmp_path: Path,
    sim_time: Any,
    control: httpx.Client,
    atime: AsyncSimTime,
    connect_async_sim: Callable[..., AsyncImsClient],
) -> None:
    count = failing_sequences(len(rows))[1]  # two of the jobs fail part-way
    fields = ("image_id", "state", "status", "process_percent", "begin_time", "end_time", "error_code",
              "fail_reason", "object_size", "note")  # fmt: skip

    def outcome(ledger: Ledger) -> list[tuple[Any, ...]]:
        return sorted(tuple(r[f] for f in fields) for r in ledger.rows())

    with Ledger(tmp_path / "sync.sqlite") as ledger:
        launch(rows.head(count), client=client, ledger=ledger, max_rate=1000, concurrency=1)
        watch(ledger, client=client, clock=sim_time, sleep=sim_time.sleep, **COARSE)
        synchronous = outcome(ledger)
    control.post("/reset", json={"seed": 0, "images": 200}).raise_for_status()
    with Ledger(tmp_path / "async.sqlite") as ledger:
        launch(rows.head(count), client=client, ledger=ledger, max_rate=1000, concurrency=1)
        watch_to_end(connect_async_sim("asgi"), ledger, atime)
        asynchronous = outcome(ledger)

    assert [r[1] for r in synchronous].count(State.FAILED) == 2
    assert asynchronous == synchronous


@pytest.mark.parametrize("mode", MODES)
def test_the_polls_of_due_jobs_are_in_flight_at_once(
    launch_first: Callable[[int], pd.DataFrame],
    ledger: Ledger,
    atime: AsyncSimTime,
    connect_async_sim: Callable[..., AsyncImsClient],
    mode: str,
) -> None:
    launch_first(5)
    counters: list[InFlight] = []

    def wrap(inner: httpx.AsyncBaseTransport) -> httpx.AsyncBaseTransport:
        counters.append(InFlight(inner))
        return counters[0]

    watch_to_end(connect_async_sim(mode, wrap), ledger, atime)

    assert counters[0].polls >= 5
    assert counters[0].most >= 2  # several polls shared the one pool at the same time
    assert not ledger.rows(LIVE)


def test_all_polls_together_stay_under_the_rate_cap(
    launch_first: Callable[[int], pd.DataFrame],
    ledger: Ledger,
    sent: Any,
    connect_async_sim: Callable[..., AsyncImsClient],
) -> None:
    # Real time here: the manual clock stands still, so six jobs want a poll every 0.05 s (120/s) for a second.
    launch_first(6)
    sent.clear()
    sent.clock = time.monotonic

    async def body(c: AsyncImsClient) -> None:
        await watch_async(ledger, client=c, timeout=1.0, interval=0.05, max_interval=0.05, max_rate=10.0)

    with pytest.raises(WaitTimeoutError):
        run(connect_async_sim("asgi"), body)

    times = [t for r, t in zip(sent.requests, sent.times, strict=True) if "/cloudimages/job/" in r.url.path]
    assert 10 < len(times) <= 10 + 10 * (times[-1] - times[0]) + 1  # a burst of 10, then 10 a second
    for i in range(len(times)):
        for j in range(i + 1, len(times)):
            assert times[j] - times[i] >= (j - i - 10) / 10.0 - 0.02
    assert len(ledger.rows(LIVE)) == 6


def test_cancelling_the_task_stops_watching_and_leaves_the_jobs_live(
    launch_first: Callable[[int], pd.DataFrame],
    ledger: Ledger,
    atime: AsyncSimTime,
    connect_async_sim: Callable[..., AsyncImsClient],
    caplog: pytest.LogCaptureFixture,
) -> None:
    launch_first(3)

    async def body(c: AsyncImsClient) -> tuple[pd.DataFrame, int, bool]:
        seen = asyncio.Event()
        calls: list[Progress] = []

        def report(progress: Progress) -> None:
            calls.append(progress)
            seen.set()

        task = asyncio.create_task(watch_async(ledger, client=c, clock=atime, sleep=atime.sleep, on_progress=report,
                                               **COARSE))  # fmt: skip
        await seen.wait()
        task.cancel()
        frame = await task
        return frame, len(calls), task.cancelled()

    with caplog.at_level(logging.WARNING, logger="ims_nb"):
        frame, calls, cancelled = run(connect_async_sim("asgi"), body)

    assert not cancelled and calls >= 1
    assert len(frame) == 3 and list(frame.columns) == list(HISTORY_COLUMNS)
    assert len(ledger.rows(LIVE)) == 3
    assert all(r["state"] in (State.SUBMITTED, State.RUNNING) for r in ledger.rows())
    assert "3 export job(s) go on in the cloud" in caplog.text


@pytest.mark.parametrize("mode", MODES)
def test_watch_async_over_plain_job_ids_returns_their_records(
    launch_first: Callable[[int], pd.DataFrame],
    ledger: Ledger,
    atime: AsyncSimTime,
    connect_async_sim: Callable[..., AsyncImsClient],
    mode: str,
) -> None:
    job_ids = list(launch_first(3)["job_id"])
    seen: list[Progress] = []

    async def body(c: AsyncImsClient) -> pd.DataFrame:
        return await watch_async(job_ids, client=c, clock=atime, sleep=atime.sleep, on_progress=seen.append,
                                 **COARSE)  # fmt: skip

    frame = run(connect_async_sim(mode), body)

    assert list(frame.columns) == list(JOB_COLUMNS)
    assert sorted(frame["job_id"]) == sorted(job_ids)
    assert (frame["status"] == "SUCCESS").all()
    assert {p.job_id for p in seen} == set(job_ids)
    assert all(r["state"] == "submitted" for r in ledger.rows())  # the ledger is not touched
