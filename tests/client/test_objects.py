"""``client.objects`` / ``iter_objects``: paged OBS object listings (sync and async) against the simulator."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pandas as pd
import pytest
from obs import ObsClient

from ims_nb import ApiError, ImsClient
from ims_nb.client.obs_listing import OBJECT_COLUMNS
from ims_nb.sim import Simulator

SCRATCH = "ims-exports-scratch"


@pytest.fixture()
def world(fresh_sim: Simulator) -> Iterator[Simulator]:
    """The reset simulator, reset again afterwards (these tests add objects)."""
    yield fresh_sim
    httpx.post(f"{fresh_sim.endpoint}/_sim/reset", json={"seed": 0, "images": 200}).raise_for_status()


def put_many(sim: Simulator, prefix: str, count: int) -> list[str]:
    keys = [f"{prefix}{n:05d}.bin" for n in range(count)]
    with sim.backend.lock:
        for key in keys:
            sim.backend.put_object(SCRATCH, key, b"x")
    return keys


def listings(sent: Any) -> list[httpx.Request]:
    return [r for r in sent.requests if r.method == "GET" and r.url.path == f"/{SCRATCH}"]


@pytest.mark.parametrize(("count", "pages"), [(0, 1), (1000, 1), (1001, 2), (2500, 3)])
def test_paging_boundaries(world: Simulator, sim_client: ImsClient, sent: Any, count: int, pages: int) -> None:
    keys = put_many(world, "paged/", count)
    sent.clear()
    frame = sim_client.objects(SCRATCH, prefix="paged/")
    assert frame["key"].tolist() == keys
    assert len(listings(sent)) == pages
    assert dict(frame.dtypes.astype(str)) == dict(OBJECT_COLUMNS)


def test_iteration_is_lazy_and_capped(world: Simulator, sim_client: ImsClient, sent: Any) -> None:
    keys = put_many(world, "lazy/", 1500)
    sent.clear()
    records = sim_client.iter_objects(SCRATCH, prefix="lazy/", max_items=1200)
    assert listings(sent) == []  # nothing sent until iterated
    assert [r["key"] for r in records] == keys[:1200]
    second = listings(sent)[1].url.params
    assert (second["marker"], second["max-keys"]) == (keys[999], "200")
    assert sim_client.objects(SCRATCH, prefix="lazy/", max_items=0).empty


def test_prefix_selects_and_the_seeded_objects_are_typed(sim_client: ImsClient) -> None:
    frame = sim_client.objects("ims-exports-cn-north-4")
    readme = frame.set_index("key").loc["README.txt"]
    assert readme["size_bytes"] == 512 and readme["storage_class"] == "STANDARD"
    assert readme["etag"] == hashlib.md5(b"README").hexdigest()
    assert readme["last_modified"].tzinfo is not None
    assert sim_client.objects("ims-exports-cn-north-4", prefix="exports/")["key"].str.startswith("exports/").all()
    assert sim_client.objects("ims-archive-warm", prefix="nothing/").empty


def test_an_object_put_through_the_sdk_is_seen(world: Simulator, sim_client: ImsClient) -> None:
    info = world.info
    sdk = ObsClient(access_key_id=info.ak, secret_access_key=info.sk, server=info.endpoint, max_retry_count=0)
    try:
        assert sdk.putContent(SCRATCH, "outside/ledger.qcow2", content=b"image bytes").status == 200
        meta = sdk.getObjectMetadata(SCRATCH, "outside/ledger.qcow2").body
    finally:
        sdk.close()
    (row,) = sim_client.objects(SCRATCH, prefix="outside/").to_dict("records")
    assert row["bucket"] == SCRATCH and row["key"] == "outside/ledger.qcow2" and row["size_bytes"] == 11
    assert f'"{row["etag"]}"' == meta.etag
    assert row["last_modified"] == pd.Timestamp(world.backend.clock.now(), unit="s", tz="UTC").floor("s")


def test_a_missing_bucket_is_an_api_error(sim_client: ImsClient) -> None:
    with pytest.raises(ApiError) as caught:
        sim_client.objects("ims-no-such-bucket")
    assert caught.value.status == 404


def test_the_async_client_lists_the_same(world: Simulator, connect_sim: Callable[..., ImsClient]) -> None:
    keys = put_many(world, "async/", 1001)
    client = connect_sim(transport=None)

    async def listed() -> tuple[list[str], pd.DataFrame]:
        async with client.to_async() as twin:
            seen = [r["key"] async for r in twin.iter_objects(SCRATCH, prefix="async/")]
            return seen, await twin.objects(SCRATCH, prefix="async/", max_items=3)

    seen, frame = asyncio.run(listed())
    assert seen == keys
    assert frame["key"].tolist() == keys[:3]
    assert frame.equals(client.objects(SCRATCH, prefix="async/", max_items=3))
