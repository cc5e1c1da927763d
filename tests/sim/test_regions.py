"""A multi-region simulator: one endpoint per region, a global IAM, official SDKs per region, per-region faults."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkcore.region.cache import ProfileRegionCache
from huaweicloudsdkims.v2 import ListImagesRequest
from obs import ObsClient

from ims_nb.client.auth import AkSkAuth
from ims_nb.sim import Simulator
from ims_nb.sim.estate import build_estate
from tests.sim.test_sdk_ims import PROJECT_ROOT, _read_line, sdk_client

REGIONS = ("cn-north-4", "ap-southeast-1", "ap-southeast-3")


@pytest.fixture(scope="module")
def estate() -> Iterator[Simulator]:
    """Three regions, 40 images each, manual clock. Tests that add faults or latency remove them."""
    with Simulator(regions=REGIONS, seed=0, images=40, manual_clock=True) as simulator:
        yield simulator


def region(estate: Simulator, name: str) -> dict[str, str]:
    assert estate.info.regions is not None
    return estate.info.regions[name]


def list_ids(endpoint: str, ak: str, sk: str, project_id: str) -> set[str]:
    client = sdk_client(endpoint, ak, sk, project_id)
    return {image.id for image in client.list_images(ListImagesRequest(limit=100)).images}


def password_token(endpoint: str, estate: Simulator, scope: dict[str, Any] | None = None) -> str:
    credentials = httpx.get(f"{estate.endpoint}/_sim/credentials").json()
    user = next(u for u in credentials["users"] if u["name"] == "ims-operator")
    login = {"name": user["name"], "password": user["password"], "domain": {"name": credentials["domain_name"]}}
    identity = {"methods": ["password"], "password": {"user": login}}
    body = {"auth": {"identity": identity} | ({"scope": scope} if scope else {})}
    response = httpx.post(f"{endpoint}/v3/auth/tokens", json=body).raise_for_status()
    return response.headers["x-subject-token"]


def test_cli_line_maps_regions_and_projects_and_writes_the_sdk_regions_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    regions_file = tmp_path / "regions.yaml"
    command = [sys.executable, "-m", "ims_nb", "sim", "--port", "0", "--manual-clock", "--images", "30",
               "--regions", ",".join(REGIONS), "--regions-file", str(regions_file)]  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=PROJECT_ROOT)
    try:
        info = json.loads(_read_line(proc, timeout=30))
        assert set(info) == {"endpoint", "region", "project_id", "ak", "sk", "regions", "projects"}
        assert list(info["regions"]) == list(REGIONS) and info["region"] == REGIONS[0]
        first = info["regions"][REGIONS[0]]
        assert (first["endpoint"], first["project_id"]) == (info["endpoint"], info["project_id"])
        assert len({r["endpoint"] for r in info["regions"].values()}) == 3
        names = {p["name"]: p for p in info["projects"]}
        assert set(names) == {*REGIONS, "cn-north-4_dev"} and names["cn-north-4_dev"]["region"] == "cn-north-4"
        for name in REGIONS:
            assert names[name]["id"] == info["regions"][name]["project_id"]
            images = list_ids(info["regions"][name]["endpoint"], info["ak"], info["sk"], names[name]["id"])
            assert len(images) >= 30
        monkeypatch.setenv("HUAWEICLOUD_SDK_REGIONS_FILE", str(regions_file))
        resolved = ProfileRegionCache._resolve_profile()  # the SDK's own reading of the file
        for service in ("IMS", "IAM"):
            for name in REGIONS:
                assert resolved[service + name].endpoints == [info["regions"][name]["endpoint"]]
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) in (0, -signal.SIGINT, 130)


def test_each_region_lists_its_own_images_and_refuses_another_regions_project(estate: Simulator) -> None:
    info = estate.info
    seen = {}
    for name in REGIONS:
        where = region(estate, name)
        seen[name] = list_ids(where["endpoint"], info.ak, info.sk, where["project_id"])
        assert len(seen[name]) >= 40
    assert not seen["ap-southeast-1"] & seen["ap-southeast-3"]
    private = [seen[n] - seen["cn-north-4"] for n in REGIONS[1:]]
    assert all(private) and not private[0] & private[1]
    other = region(estate, "ap-southeast-1")["project_id"]
    with pytest.raises(ClientRequestException) as refused:
        list_ids(info.endpoint, info.ak, info.sk, other)
    assert (refused.value.status_code, refused.value.error_code) == (403, "APIGW.0310")


def test_a_sub_project_sees_its_own_private_images(estate: Simulator) -> None:
    info = estate.info
    assert info.projects is not None
    dev = next(p for p in info.projects if p["name"] == "cn-north-4_dev")
    main_ids, dev_ids = (list_ids(info.endpoint, info.ak, info.sk, p) for p in (info.project_id, dev["id"]))
    backend = estate.backend
    owners = {backend.images[i]["owner"] for i in dev_ids - main_ids}
    assert owners == {dev["id"]}
    assert all(backend.images[i]["owner"] != dev["id"] for i in main_ids)


def test_iam_is_global_and_scoped_tokens_work_in_their_region_only(estate: Simulator) -> None:
    info = estate.info
    second = region(estate, "ap-southeast-1")
    token = password_token(info.endpoint, estate)  # issued by the first region's endpoint
    listed = httpx.get(f"{second['endpoint']}/v3/auth/projects", headers={"X-Auth-Token": token})
    projects = listed.raise_for_status().json()["projects"]
    assert {p["name"] for p in projects} == {*REGIONS, "cn-north-4_dev"}
    assert set(projects[0]) == {"id", "name", "domain_id", "enabled", "is_domain", "parent_id", "description", "links"}
    dev = next(p for p in projects if p["name"] == "cn-north-4_dev")
    assert dev["parent_id"] == info.project_id
    scoped = password_token(info.endpoint, estate, {"project": {"name": "ap-southeast-1"}})
    headers = {"X-Auth-Token": scoped}
    assert httpx.get(f"{second['endpoint']}/v2/cloudimages", headers=headers).status_code == 200
    refused = httpx.get(f"{info.endpoint}/v2/cloudimages", headers=headers)
    assert refused.status_code == 403 and refused.json()["error_code"] == "APIGW.0310"


@pytest.mark.parametrize(
    ("query", "names"),
    [
        ({"name": "ap-southeast-3"}, {"ap-southeast-3"}),
        ({"enabled": "true"}, {*REGIONS, "cn-north-4_dev"}),
        ({"enabled": "false"}, set()),
    ],
)
def test_keystone_project_filters(estate: Simulator, query: dict[str, str], names: set[str]) -> None:
    auth = AkSkAuth(estate.info.ak, estate.info.sk)
    endpoint = region(estate, "ap-southeast-3")["endpoint"]
    found = httpx.get(f"{endpoint}/v3/projects", params=query, auth=auth).raise_for_status().json()["projects"]
    assert {p["name"] for p in found} == names


def test_keystone_parent_filter_finds_the_sub_project(estate: Simulator) -> None:
    auth = AkSkAuth(estate.info.ak, estate.info.sk)
    params = {"parent_id": estate.info.project_id}
    found = httpx.get(f"{estate.endpoint}/v3/projects", params=params, auth=auth).json()["projects"]
    assert [p["name"] for p in found] == ["cn-north-4_dev"]


def test_official_iam_sdk_lists_projects(estate: Simulator) -> None:
    from huaweicloudsdkcore.auth.credentials import GlobalCredentials
    from huaweicloudsdkiam import v3 as iam  # the test extra installs it: never skipped

    info = estate.info
    domain_id = httpx.get(f"{info.endpoint}/_sim/credentials").json()["domain_id"]
    for name in REGIONS:
        client = (
            iam.IamClient.new_builder()
            .with_credentials(GlobalCredentials(info.ak, info.sk, domain_id))
            .with_endpoint(region(estate, name)["endpoint"])
            .build()
        )
        every = client.keystone_list_auth_projects(iam.KeystoneListAuthProjectsRequest()).projects
        assert {p.name for p in every} == {*REGIONS, "cn-north-4_dev"}
        named = client.keystone_list_projects(iam.KeystoneListProjectsRequest(name=name)).projects
        assert [p.id for p in named] == [region(estate, name)["project_id"]]


def test_official_obs_client_lists_each_regions_buckets(estate: Simulator) -> None:
    for name in REGIONS:
        client = ObsClient(access_key_id=estate.info.ak, secret_access_key=estate.info.sk,
                           server=region(estate, name)["endpoint"])  # fmt: skip
        try:
            response = client.listBuckets(isQueryLocation=True)
        finally:
            client.close()
        assert response.status == 200
        locations = {b.name: b.location for b in response.body.buckets}
        assert locations[f"ims-exports-{name}"] == name


def test_a_fault_on_one_region_leaves_the_others_working(estate: Simulator) -> None:
    info = estate.info
    control = f"{info.endpoint}/_sim"
    fault = {"kind": "response", "status": 503, "count": None, "region": "ap-southeast-1"}
    httpx.post(f"{control}/faults", json=fault).raise_for_status()
    try:
        for name in REGIONS:
            where = region(estate, name)
            auth = AkSkAuth(info.ak, info.sk, project_id=where["project_id"])
            status = httpx.get(f"{where['endpoint']}/v2/cloudimages", auth=auth).status_code
            assert status == (503 if name == "ap-southeast-1" else 200), name
    finally:
        httpx.request("DELETE", f"{control}/faults", json={"region": "ap-southeast-1"}).raise_for_status()
    assert httpx.post(f"{control}/faults", json=fault | {"region": "eu-west-0"}).status_code == 400


def test_latency_is_added_per_region(estate: Simulator) -> None:
    third = region(estate, "ap-southeast-3")["endpoint"]
    set_latency = httpx.post(f"{third}/_sim/latency", json={"seconds": 0.3}).raise_for_status().json()
    assert set_latency == {"region": "ap-southeast-3", "seconds": 0.3}
    try:
        slow = httpx.get(f"{third}/v3/auth/projects").elapsed.total_seconds()
        fast = httpx.get(f"{estate.endpoint}/v3/auth/projects").elapsed.total_seconds()
        assert slow >= 0.3 > fast
    finally:
        httpx.post(f"{estate.endpoint}/_sim/latency", json={"seconds": 0, "region": "ap-southeast-3"})
    assert httpx.post(f"{third}/_sim/latency", json={"seconds": -1}).status_code == 400


def test_the_clock_and_reset_cover_every_region(estate: Simulator) -> None:
    second = region(estate, "ap-southeast-1")["endpoint"]
    moved = httpx.post(f"{estate.endpoint}/_sim/clock", json={"advance": 60}).json()["now"]
    assert httpx.get(f"{second}/_sim/clock").json()["now"] == moved
    state = httpx.post(f"{second}/_sim/reset", json={}).json()
    assert state["region"] == "ap-southeast-1" and state["regions"] == list(REGIONS)
    assert httpx.get(f"{estate.endpoint}/_sim/clock").json()["now"] == "2026-01-01T00:00:00.000Z"
    assert estate.info.project_id == httpx.get(f"{estate.endpoint}/_sim/credentials").json()["project_id"]


def test_state_keeps_every_region_and_the_shared_tokens(tmp_path: Path) -> None:
    state = tmp_path / "sim.db"
    first = build_estate(regions=REGIONS, images=10, manual_clock=True, state=state)
    second_region = first[1].backend
    token, _ = second_region.issue_token(second_region.accounts["ims-operator"], second_region.project_id, ["password"])
    projects = [s.backend.project_id for s in first]
    for simulation in first:
        assert simulation.backend.store is not None
        simulation.backend.store.close()
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".db") == [
        "sim.ap-southeast-1.db", "sim.ap-southeast-3.db", "sim.db"]  # fmt: skip
    again = build_estate(regions=REGIONS, images=10, manual_clock=True, state=state)
    assert [s.backend.project_id for s in again] == projects
    assert all(s.backend.token(token) is not None for s in again)
    for simulation in again:
        assert simulation.backend.store is not None
        simulation.backend.store.close()
