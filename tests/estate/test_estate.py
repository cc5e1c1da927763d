"""The estate client against a real three-region simulator: one frame, failed regions, a refused AK, the cap."""

from __future__ import annotations

import asyncio
import json
import ssl
from collections import defaultdict
from collections.abc import Iterator, Mapping
from typing import Any

import httpx
import pytest

import ims_nb
from ims_nb import AuthError, EstateWarning, RetryPolicy
from ims_nb.client.connection import connect_simulator
from ims_nb.errors import MalformedAnswerError
from ims_nb.sim import Simulator
from ims_nb.vocab import Scope
from tests.estate.conftest import REGIONS, clear_region, count_requests, endpoint_of, requests_seen

FAST_RETRY = RetryPolicy(max_attempts=2, base_delay=0.01, max_delay=0.01)
SCOPE_COLUMNS = ["region", "project_id", "project_name"]


@pytest.fixture
def counted(estate_sim: Simulator) -> Iterator[Simulator]:
    count_requests(estate_sim)
    yield estate_sim
    for region in REGIONS:
        clear_region(estate_sim, region)


def single_region_frames(sim: Simulator) -> dict[Scope, int]:
    """Each project's own listing, with today's single-region client."""
    assert sim.info.projects is not None and sim.info.regions is not None
    counts = {}
    for project in sim.info.projects:
        where = sim.info.regions[project["region"]]
        line = sim.info.as_json_dict() | {"endpoint": where["endpoint"], "region": project["region"],
                                          "project_id": project["id"]}  # fmt: skip
        with connect_simulator(line) as client:
            counts[(project["region"], project["id"])] = len(client.images())
    return counts


def test_one_call_lists_every_region_and_sub_project_in_one_typed_frame(estate_sim: Simulator) -> None:
    estate = ims_nb.connect_estate(simulator=estate_sim)
    frame = estate.images()
    expected = single_region_frames(estate_sim)
    assert set(estate.scopes) == set(expected) and "cn-north-4_dev" in set(frame["project_name"])
    assert len(frame) == sum(expected.values())
    assert frame.groupby(["region", "project_id"]).size().to_dict() == expected
    with connect_simulator(estate_sim.info.as_json_dict()) as client:
        single = client.images(max_items=5)
    assert list(frame.columns) == SCOPE_COLUMNS + list(single.columns)
    assert frame.dtypes.drop(SCOPE_COLUMNS).equals(single.dtypes)
    assert all(str(frame[c].dtype) == "string" for c in SCOPE_COLUMNS)
    status = estate.status
    assert list(status.columns) == ["region", "project", "project_id", "images", "seconds", "error"]
    assert status["error"].isna().all() and status["images"].sum() == len(frame)
    records = list(estate.iter_images())
    assert sorted(r["id"] for r in records) == sorted(frame["id"])
    assert {r["project_name"] for r in records} == set(frame["project_name"])


def test_repr_names_regions_and_projects_never_the_sk(estate_sim: Simulator) -> None:
    estate = ims_nb.connect_estate(["cn-north-4"], simulator=estate_sim, include_subprojects=False)
    text = repr(estate)
    assert "cn-north-4" in text and "cn-north-4_dev" not in text and estate_sim.info.sk not in text
    assert estate.regions == ["cn-north-4"]


def test_projects_are_chosen_by_name_and_sub_projects_can_be_excluded(estate_sim: Simulator) -> None:
    named = ims_nb.connect_estate("all", ["cn-north-4_dev", "ap-southeast-3"], simulator=estate_sim)
    assert sorted(p.name for p in named.projects) == ["ap-southeast-3", "cn-north-4_dev"]
    excluded = ims_nb.connect_estate(simulator=estate_sim, exclude=["cn-north-4_dev"])
    assert len(excluded.projects) == len(REGIONS)
    with pytest.raises(ims_nb.ConfigError, match="eu-west-0"):
        ims_nb.connect_estate(["eu-west-0"], simulator=estate_sim)


def test_a_failing_region_leaves_the_others_rows_a_warning_and_a_status(estate_sim: Simulator) -> None:
    fault = {"kind": "response", "status": 503, "count": None, "region": "ap-southeast-1"}
    httpx.post(f"{estate_sim.endpoint}/_sim/faults", json=fault).raise_for_status()
    try:
        estate = ims_nb.connect_estate(simulator=estate_sim, retry=FAST_RETRY)
        with pytest.warns(EstateWarning, match="ap-southeast-1"):
            frame = estate.images()
    finally:
        clear_region(estate_sim, "ap-southeast-1")
    assert set(frame["region"]) == {"cn-north-4", "ap-southeast-3"}
    status = estate.status.set_index("project")
    assert "ServerError" in status.loc["ap-southeast-1", "error"] and "503" in status.loc["ap-southeast-1", "error"]
    assert status.drop("ap-southeast-1")["error"].isna().all()
    assert frame.groupby("region").size().sum() == status["images"].sum()


def test_buckets_per_region(estate_sim: Simulator) -> None:
    buckets = ims_nb.connect_estate(simulator=estate_sim).buckets()
    assert set(buckets["region"]) == set(REGIONS)
    for region in REGIONS:
        assert f"ims-exports-{region}" in set(buckets.loc[buckets["region"] == region, "name"])


@pytest.mark.parametrize("count", [1, None], ids=["once", "always"])
def test_a_project_list_without_projects_is_asked_again_then_refused(estate_sim: Simulator, count: int | None) -> None:
    fault = {"kind": "response", "path": "^/v3/auth/projects", "status": 200, "body": '{"nope": []}', "count": count}
    httpx.post(f"{estate_sim.endpoint}/_sim/faults", json=fault).raise_for_status()
    try:
        if count == 1:  # IAM's next answer is whole: discovery goes on
            assert set(ims_nb.connect_estate(simulator=estate_sim, retry=FAST_RETRY).scopes) == set(
                ims_nb.connect_estate(simulator=estate_sim).scopes)  # fmt: skip
        else:
            with pytest.raises(MalformedAnswerError, match="^IAM's project list has no projects$") as malformed:
                ims_nb.connect_estate(simulator=estate_sim, retry=FAST_RETRY)
            assert malformed.value.method == "GET" and malformed.value.url.endswith("/v3/auth/projects")
        faults = httpx.get(f"{estate_sim.endpoint}/_sim/faults").json()["faults"]
        assert [f["hits"] for f in faults] == ([] if count == 1 else [FAST_RETRY.max_attempts])
    finally:
        clear_region(estate_sim, REGIONS[0])


def test_a_refused_ak_at_connect_sends_one_request_in_all(counted: Simulator) -> None:
    with pytest.raises(AuthError) as refused:
        ims_nb.connect_estate(simulator=counted, ak=counted.info.ak, sk="not-the-secret-key-0000")
    assert refused.value.final
    assert sum(requests_seen(counted).values()) == 1


def test_a_refusal_in_one_region_stops_every_region_and_raises_once(counted: Simulator) -> None:
    estate = ims_nb.connect_estate(simulator=counted, page_size=20)
    message = "Incorrect IAM authentication information: verify aksk signature fail"
    body = json.dumps({"error_code": "APIGW.0301", "error_msg": message})
    refusal = {"kind": "response", "status": 401, "body": body, "count": None, "path": "/v2/cloudimages",
               "region": "ap-southeast-1"}  # fmt: skip
    httpx.request("DELETE", f"{counted.endpoint}/_sim/faults", json={"region": "ap-southeast-1"})
    httpx.post(f"{counted.endpoint}/_sim/faults", json=refusal).raise_for_status()
    for region in ("cn-north-4", "ap-southeast-3"):
        httpx.post(f"{counted.endpoint}/_sim/latency", json={"seconds": 0.3, "region": region}).raise_for_status()
    before = requests_seen(counted)
    with pytest.raises(AuthError) as refused:
        estate.images()
    assert refused.value.final
    faults = httpx.get(f"{endpoint_of(counted, 'ap-southeast-1')}/_sim/faults").json()["faults"]
    assert [f["hits"] for f in faults] == [1]
    seen = requests_seen(counted)
    after = {region: seen[region] - before[region] for region in seen}
    assert after["cn-north-4"] <= 2 and after["ap-southeast-3"] <= 1  # the first pages in flight, nothing after
    with pytest.raises(AuthError):
        estate.images()  # refused for good: nothing sent
    assert requests_seen(counted) == seen


class InFlight(httpx.AsyncBaseTransport):
    """Counts the requests in flight per host (the highest count seen) on their way to a real transport (one per
    event loop: each estate call runs in a loop of its own)."""

    def __init__(self) -> None:
        self._inner: dict[int, httpx.AsyncHTTPTransport] = {}
        self.now: dict[str, int] = defaultdict(int)
        self.peak: dict[str, int] = defaultdict(int)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        host = f"{request.url.host}:{request.url.port}"
        self.now[host] += 1
        self.peak[host] = max(self.peak[host], self.now[host])
        try:
            inner = self._inner.setdefault(id(asyncio.get_running_loop()), httpx.AsyncHTTPTransport())
            response = await inner.handle_async_request(request)
            await response.aread()
            return response
        finally:
            self.now[host] -= 1

    async def aclose(self) -> None:
        inner = self._inner.pop(id(asyncio.get_running_loop()), None)
        if inner is not None:
            await inner.aclose()


@pytest.mark.parametrize("cap", [1, 2])
def test_the_per_region_cap_bounds_requests_in_flight(estate_sim: Simulator, cap: int) -> None:
    home = endpoint_of(estate_sim, "cn-north-4")  # two projects: two listings at once unless capped
    httpx.post(f"{home}/_sim/latency", json={"seconds": 0.15}).raise_for_status()
    try:
        counter = InFlight()
        estate = ims_nb.connect_estate(["cn-north-4"], simulator=estate_sim, max_concurrency=cap, page_size=100,
                                       transport=counter)  # fmt: skip
        counter.peak.clear()
        estate.images()
    finally:
        clear_region(estate_sim, "cn-north-4")
    assert counter.peak[home.removeprefix("http://")] == cap


def test_sync_clients_per_scope(estate_sim: Simulator) -> None:
    estate = ims_nb.connect_estate(simulator=estate_sim)
    assert set(estate.clients) == set(estate.scopes)
    region, project_id = estate.scopes[0]
    client = estate.client_for(region, project_id)
    assert client.project_id == project_id and client.region == region
    assert len(client.images(max_items=3)) == 3
    with pytest.raises(ims_nb.ConfigError):
        estate.client_for("eu-west-0", project_id)
    estate.close()


def test_the_estate_is_the_mapping_of_its_scopes_to_clients_that_plans_take(estate_sim: Simulator) -> None:
    with ims_nb.connect_estate(simulator=estate_sim) as estate:
        assert isinstance(estate, Mapping) and list(estate) == estate.scopes and len(estate) == len(estate.projects)
        assert all(estate[scope] is estate.client_for(*scope) for scope in estate)
        images = estate.images(imagetype="private")
        plan = ims_nb.plan_exports(images, bucket="ims-exports-{region}", key_template="{project}/{name}-{id8}.{ext}",
                                   file_format="qcow2", client=estate)  # fmt: skip
        assert set(plan["region"]) == set(estate.regions)
        assert (plan["bucket"] == "ims-exports-" + plan["region"]).all()


def test_an_estate_loads_the_ca_store_once(estate_sim: Simulator, monkeypatch: pytest.MonkeyPatch) -> None:
    """IAM discovery, every fan-out and the sync clients share one TLS context (a load is ~40 ms of CPU)."""
    loads = []
    load = ssl.SSLContext.load_verify_locations

    def counted(context: ssl.SSLContext, *args: Any, **kwargs: Any) -> None:
        loads.append(args or kwargs)
        load(context, *args, **kwargs)

    monkeypatch.setattr(ssl.SSLContext, "load_verify_locations", counted)
    with ims_nb.connect_estate(simulator=estate_sim) as estate:
        assert len(estate.images()) == len(estate.images()) > 0
        assert len(estate.client_for(*estate.scopes[0]).images(max_items=1)) == 1
    assert len(loads) == 1
