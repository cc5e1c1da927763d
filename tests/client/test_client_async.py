"""The asynchronous client on the main paths, in-process (``httpx.ASGITransport``) and over loopback HTTP."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

import ims_nb
from ims_nb import (
    ApiError,
    AsyncImsClient,
    AuthError,
    ImsClient,
    OutcomeUnknownError,
    RetryPolicy,
    SimulatorWarning,
    ThrottledError,
)
from ims_nb.errors import ConfigError
from ims_nb.sim import Simulator
from tests.helpers import BUCKET

EXPORT = "^/v1/cloudimages/[^/]+/file$"
MODES = ["asgi", "loopback"]


@pytest.fixture()
def connect_async_sim(
    fresh_sim: Simulator, sent: Any, async_recording: Callable[..., httpx.AsyncBaseTransport]
) -> Callable[..., AsyncImsClient]:
    """``connect_async()`` to the reset simulator as the operator: in-process ("asgi") or over "loopback" HTTP."""

    def make(mode: str, **overrides: Any) -> AsyncImsClient:
        info = fresh_sim.info
        inner = httpx.ASGITransport(app=fresh_sim.simulation) if mode == "asgi" else httpx.AsyncHTTPTransport()
        arguments: dict[str, Any] = {
            "ak": info.ak,
            "sk": info.sk,
            "project_id": info.project_id,
            "endpoint": info.endpoint,
            "transport": async_recording(sent, inner),
        }
        arguments.update(overrides)
        return ims_nb.connect_async(**{k: v for k, v in arguments.items() if v is not None})

    return make


def run(client: AsyncImsClient, scenario: Callable[[AsyncImsClient], Awaitable[Any]]) -> Any:
    """Run ``scenario(client)`` in a fresh event loop, closing the client afterwards."""

    async def main() -> Any:
        async with client:
            return await scenario(client)

    return asyncio.run(main())


@pytest.mark.parametrize("mode", MODES)
def test_async_listing_matches_the_sync_one(
    connect_async_sim: Callable[..., AsyncImsClient], sim_client: ImsClient, sent: Any, mode: str
) -> None:
    expected = [i["id"] for i in sim_client.iter_images()]
    sent.clear()

    async def scenario(client: AsyncImsClient) -> None:
        images = client.iter_images()
        assert len(sent) == 0  # lazy
        assert [i["id"] async for i in images] == expected
        assert len(sent) == 5  # 200 images in pages of 50, and the empty page after a full one
        capped = [i["id"] async for i in client.iter_images(max_items=7, imagetype="private")]
        assert capped == [i["id"] for i in sim_client.iter_images(max_items=7, imagetype="private")]
        frame = await client.images(imagetype="gold")
        assert list(frame["id"]) == [i["id"] for i in sim_client.iter_images(imagetype="gold")]
        with pytest.raises(ConfigError):
            [i async for i in client.iter_images(limit=3)]

    run(connect_async_sim(mode, page_size=50), scenario)


@pytest.mark.parametrize("mode", MODES)
def test_async_project_discovery(
    connect_async_sim: Callable[..., AsyncImsClient], fresh_sim: Simulator, sent: Any, mode: str
) -> None:
    async def scenario(client: AsyncImsClient) -> str | None:
        assert client.project_id is None
        images = [i async for i in client.iter_images(max_items=2)]
        assert (await client.image(images[0]["id"]))["id"] == images[0]["id"]
        return client.project_id

    assert run(connect_async_sim(mode, project_id=None), scenario) == fresh_sim.info.project_id
    assert [r.url.path for r in sent.requests][:2] == ["/v3/projects", "/v2/cloudimages"]
    assert len(sent.matching("GET", "^/v3/projects$")) == 1


@pytest.mark.parametrize("mode", MODES)
def test_async_export_and_wait(
    connect_async_sim: Callable[..., AsyncImsClient],
    exportable: list[dict[str, Any]],
    sim_time: Any,
    control: httpx.Client,
    mode: str,
) -> None:
    seen: dict[str, list[float]] = {}

    def on_progress(job_id: str, record: dict[str, Any]) -> None:
        seen.setdefault(job_id, []).append(record["entities"]["process_percent"])

    async def scenario(client: AsyncImsClient) -> tuple[list[str], dict[str, dict[str, Any]], list[int | None]]:
        jobs = [await client.export_image(i["id"], f"{BUCKET}:async/{i['id']}.vhd", "vhd") for i in exportable[:3]]
        assert (await client.job(jobs[0]))["status"] == "INIT"
        records = await client.wait(jobs, clock=sim_time, sleep=sim_time.async_sleep, on_progress=on_progress)
        sizes = [await client.object_size(BUCKET, f"async/{i['id']}.vhd") for i in exportable[:3]]
        return jobs, records, sizes

    jobs, records, sizes = run(connect_async_sim(mode), scenario)
    assert list(records) == jobs and {r["status"] for r in records.values()} == {"SUCCESS"}
    for job_id in jobs:
        assert seen[job_id] == sorted(seen[job_id]) and seen[job_id][-1] == 100.0 and len(set(seen[job_id])) > 2
    assert all(size and size > 0 for size in sizes)
    assert sorted(j["job_id"] for j in control.get("/state").json()["jobs"]) == sorted(jobs)


@pytest.mark.parametrize("mode", MODES)
def test_async_wait_times_out_with_records(
    connect_async_sim: Callable[..., AsyncImsClient], exportable: list[dict[str, Any]], sim_time: Any, mode: str
) -> None:
    async def scenario(client: AsyncImsClient) -> ims_nb.WaitTimeoutError:
        job_id = await client.export_image(exportable[0]["id"], f"{BUCKET}:late.qcow2", "qcow2")
        with pytest.raises(ims_nb.WaitTimeoutError) as raised:
            await client.wait([job_id], clock=sim_time, sleep=sim_time.async_sleep, timeout=12)
        return raised.value

    error = run(connect_async_sim(mode), scenario)
    assert len(error.live) == 1 and error.records[error.live[0]]["status"] == "INIT"
    assert sim_time.now == pytest.approx(12)


@pytest.mark.parametrize("mode", MODES)
def test_async_buckets_and_objects(connect_async_sim: Callable[..., AsyncImsClient], sent: Any, mode: str) -> None:
    names = ["ims-exports-cn-north-4", "ims-archive-warm", "ims-archive-cold", "ims-archive-deep"]

    async def scenario(client: AsyncImsClient) -> None:
        infos = [await client.bucket(name) for name in [*names, "ims-exports-ap-southeast-1", "ims-nope"]]
        assert [i.storage_class for i in infos] == ["STANDARD", "WARM", "COLD", "DEEP_ARCHIVE", "STANDARD", None]
        assert [i.region for i in infos][-2:] == ["ap-southeast-1", None] and not infos[-1].exists
        count = len(sent)
        assert [await client.bucket(name) for name in names] == infos[:4] and len(sent) == count  # cached
        assert await client.object_size(BUCKET, "README.txt") == 512
        assert not await client.object_exists(BUCKET, "nothing-here")
        assert len(await client.buckets()) == 6

    run(connect_async_sim(mode), scenario)


@pytest.mark.parametrize("mode", MODES)
def test_async_refusals_and_lost_answers(
    connect_async_sim: Callable[..., AsyncImsClient],
    exportable: list[dict[str, Any]],
    control: httpx.Client,
    mode: str,
) -> None:
    async def scenario(client: AsyncImsClient) -> None:
        iso = [i async for i in client.iter_images(virtual_env_type="IsoImage", imagetype="private")][0]
        with pytest.raises(ApiError) as refused:
            await client.export_image(iso["id"], f"{BUCKET}:iso.qcow2", "qcow2")
        assert refused.value.code == "IMG.0167" and refused.value.request_id
        fault = {"kind": "response", "method": "POST", "path": EXPORT, "status": 500, "count": None}
        control.post("/faults", json=fault).raise_for_status()
        with pytest.raises(OutcomeUnknownError) as lost:
            await client.export_image(exportable[0]["id"], f"{BUCKET}:lost.qcow2", "qcow2")
        assert lost.value.image_id == exportable[0]["id"] and lost.value.bucket_url.endswith("lost.qcow2")

    run(connect_async_sim(mode), scenario)
    assert control.get("/faults").json()["faults"][0]["hits"] == 1  # one POST reached the server: no resend
    assert control.get("/state").json()["jobs"] == []


@pytest.mark.parametrize("mode", MODES)
def test_async_gets_retry_with_an_injected_sleep(
    connect_async_sim: Callable[..., AsyncImsClient], control: httpx.Client, mode: str
) -> None:
    retry = RetryPolicy(max_attempts=3, base_delay=0.01, rng=random.Random(3))
    settings = connect_async_sim(mode, retry=retry).settings
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    async def first_image(client: AsyncImsClient) -> list[dict[str, Any]]:
        return [i async for i in client.iter_images(max_items=1)]

    control.post("/faults", json={"kind": "throttle", "method": "GET", "count": 2})
    assert len(run(AsyncImsClient(settings, sleep=sleep), first_image)) == 1
    twin = RetryPolicy(base_delay=0.01, rng=random.Random(3))
    assert slept == [twin.backoff(1), twin.backoff(2)]
    control.post("/faults", json={"kind": "throttle", "method": "GET", "count": None})
    with pytest.raises(ThrottledError):
        run(AsyncImsClient(settings, sleep=sleep), first_image)
    assert len(slept) == 4 and control.get("/faults").json()["faults"][0]["hits"] == 3


@pytest.mark.parametrize("mode", MODES)
def test_async_password_login_and_renewal(
    connect_async_sim: Callable[..., AsyncImsClient],
    sim_users: dict[str, Any],
    control: httpx.Client,
    sent: Any,
    mode: str,
) -> None:
    operator = sim_users["users"][0]
    login = {"ak": None, "sk": None, "project_id": None, "domain": sim_users["domain_name"]}

    async def scenario(client: AsyncImsClient) -> None:
        first = [i["id"] async for i in client.iter_images(max_items=4)]
        assert [i["id"] async for i in client.iter_images(max_items=4)] == first
        control.post("/tokens/expire")
        assert [i["id"] async for i in client.iter_images(max_items=4)] == first

    run(connect_async_sim(mode, username=operator["name"], password=operator["password"], **login), scenario)
    assert len(sent.matching("POST", "^/v3/auth/tokens$")) == 2
    wrong = connect_async_sim(mode, username=operator["name"], password="nope-nope", **login)
    with pytest.raises(AuthError, match="username or password"):
        run(wrong, lambda c: c.job_progress("any"))


def test_async_connect_falls_back_to_the_simulator_line(monkeypatch: pytest.MonkeyPatch, sim: Simulator) -> None:
    monkeypatch.setenv("IMS_NB_SIM", json.dumps(sim.info.as_json_dict()))
    with pytest.warns(SimulatorWarning) as warned:
        client = ims_nb.connect_async()
    assert warned[0].filename == __file__ and "SIMULATOR" in repr(client)
    assert len(run(client, lambda c: c.buckets())) == 6
