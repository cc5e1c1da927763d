"""The synchronous client end to end against the simulator over loopback HTTP: listing, frames, login and OBS."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest

import ims_nb
from ims_nb import ApiError, AsyncImsClient, AuthError, ImsClient, SimulatorWarning
from ims_nb.errors import ConfigError
from ims_nb.frames import IMAGE_COLUMNS
from ims_nb.sim import Simulator
from tests.helpers import BUCKET, LIST

GOLD = 12  # public images in the seed-0 world (of 200)
REQUEST_ID = re.compile(r"^[0-9a-f]{32}$")


def listing_limits(sent: Any) -> list[int]:
    return [int(r.url.params["limit"]) for r in sent.matching("GET", LIST)]


# --- listing --------------------------------------------------------------------------------------


def test_iter_images_sends_nothing_until_iterated(sim_client: ImsClient, sent: Any) -> None:
    images = sim_client.iter_images(imagetype="private", max_items=3)
    assert len(sent) == 0
    first = next(images)
    assert len(sent) == 1 and first["__imagetype"] == "private"
    assert len([first, *images]) == 3 and len(sent) == 1


@pytest.mark.parametrize("order", [{}, {"sort_key": "name", "sort_dir": "asc"}, {"sort_key": "size"}])
def test_every_image_comes_exactly_once_across_pages(
    connect_sim: Callable[..., ImsClient], sent: Any, order: dict[str, str]
) -> None:
    whole = [i["id"] for i in connect_sim().iter_images(**order)]
    assert len(whole) == len(set(whole)) == 200 and len(sent) == 1
    sent.clear()
    paged = [i["id"] for i in connect_sim(page_size=7).iter_images(**order)]
    assert paged == whole
    pages = sent.matching("GET", LIST)
    assert len(pages) == 29  # 28 full pages of 7 and one of 4
    markers = [r.url.params.get("marker") for r in pages]
    assert markers[0] is None and markers[1:] == [whole[n * 7 - 1] for n in range(1, 29)]


def test_an_empty_listing_is_one_request(sim_client: ImsClient, sent: Any) -> None:
    assert list(sim_client.iter_images(name="no-such-image")) == []
    assert len(sent) == 1


def test_exactly_one_full_page(connect_sim: Callable[..., ImsClient], sent: Any) -> None:
    client = connect_sim(page_size=GOLD)
    gold = list(client.iter_images(imagetype="gold"))
    assert len(gold) == GOLD and {i["__imagetype"] for i in gold} == {"gold"}
    assert listing_limits(sent) == [GOLD, GOLD]  # a full page may have a successor: one more (empty) page
    sent.clear()
    assert [i["id"] for i in client.iter_images(imagetype="gold", max_items=GOLD)] == [i["id"] for i in gold]
    assert listing_limits(sent) == [GOLD]  # the cap is reached: no second request


@pytest.mark.parametrize(("page_size", "pages"), [(1, 13), (4, 4), (6, 3)])
def test_a_listing_that_is_an_exact_multiple_of_the_page_size(
    connect_sim: Callable[..., ImsClient], sent: Any, page_size: int, pages: int
) -> None:
    ids = [i["id"] for i in connect_sim(page_size=page_size).iter_images(imagetype="gold")]
    assert len(ids) == len(set(ids)) == GOLD
    assert listing_limits(sent) == [page_size] * pages


@pytest.mark.parametrize(
    ("max_items", "limits"),
    [(0, []), (1, [1]), (45, [20, 20, 5]), (199, [20] * 9 + [19]), (200, [20] * 10), (5000, [20] * 11)],
)
def test_max_items_caps_the_listing_and_its_requests(
    connect_sim: Callable[..., ImsClient], sent: Any, max_items: int, limits: list[int]
) -> None:
    client = connect_sim(page_size=20)
    images = [i["id"] for i in client.iter_images(max_items=max_items)]
    assert listing_limits(sent) == limits  # never more than asked for; a full last page needs one more look
    assert images == [i["id"] for i in client.iter_images()][:max_items]
    assert len(images) == len(set(images)) == min(max_items, 200)


def test_filters_by_sdk_names_and_wire_names(sim_client: ImsClient, sent: Any) -> None:
    by_sdk = [i["id"] for i in sim_client.iter_images(imagetype="private", platform="CentOS", whole_image=False)]
    by_wire = [
        i["id"] for i in sim_client.iter_images(__imagetype="private", __platform="CentOS", __whole_image="false")
    ]
    assert by_sdk == by_wire and 0 < len(by_sdk) < 47
    first = sent.requests[0].url.params
    assert (first["__imagetype"], first["__platform"], first["__whole_image"]) == ("private", "CentOS", "false")
    whole = list(sim_client.iter_images(whole_image=True))
    assert len(whole) == 10 and all(i["__whole_image"] is True for i in whole)
    assert list(sim_client.iter_images(imagetype="gold", sort_key="name", sort_dir="asc", status=None))


@pytest.mark.parametrize(
    ("filters", "match"),
    [
        ({"colour": "blue"}, "unknown image filter 'colour'"),
        ({"__nope": "1"}, "unknown image filter"),
        ({"limit": 5}, "managed by the client's paging"),
        ({"marker": "abc"}, "managed by the client's paging"),
        ({"platform": ["CentOS"]}, "takes a string, number or boolean"),
        ({"max_items": -1}, "max_items"),
    ],
)
def test_bad_listing_arguments_are_config_errors(
    sim_client: ImsClient, sent: Any, filters: dict[str, Any], match: str
) -> None:
    with pytest.raises(ConfigError, match=match):
        list(sim_client.iter_images(**filters))
    assert len(sent) == 0


def test_images_is_a_typed_frame_of_the_same_rows(sim_client: ImsClient) -> None:
    records = list(sim_client.iter_images(imagetype="private"))
    frame = sim_client.images(imagetype="private")
    assert list(frame["id"]) == [r["id"] for r in records] and len(frame) == 185
    assert {c: str(frame[c].dtype) for c in IMAGE_COLUMNS} == dict(IMAGE_COLUMNS)
    assert list(frame["name"]) == [r["name"] for r in records]
    assert list(frame["size_bytes"]) == [int(r["__image_size"]) for r in records]
    assert len(sim_client.images(max_items=7)) == 7
    assert sim_client.images(name="no-such-image").empty


def test_one_image_and_unknown_ids(sim_client: ImsClient) -> None:
    record = next(sim_client.iter_images(imagetype="private"))
    shown = sim_client.image(record["id"])
    assert shown["id"] == record["id"] and shown["name"] == record["name"]
    with pytest.raises(ApiError, match="IMG.0027") as missing:
        sim_client.image("00000000-0000-4000-8000-000000000000")
    assert missing.value.status == 404 and type(missing.value) is ApiError
    with pytest.raises(ApiError) as no_job:
        sim_client.job_progress("ff808082000000000000000000000000")
    assert (no_job.value.status, no_job.value.code) == (400, "IMG.0086")
    with pytest.raises(ConfigError):
        sim_client.image("")


def test_the_project_is_discovered_once_through_iam(
    connect_sim: Callable[..., ImsClient], sent: Any, fresh_sim: Simulator
) -> None:
    client = connect_sim(project_id=None)
    images = client.iter_images(max_items=3)
    assert client.project_id is None and len(sent) == 0  # not even the discovery before iterating
    assert len(list(images)) == 3
    assert [(r.method, r.url.path, r.url.params.get("name")) for r in sent.requests] == [
        ("GET", "/v3/projects", "cn-north-4"),
        ("GET", "/v2/cloudimages", None),
    ]
    assert client.project_id == fresh_sim.info.project_id
    assert sent.requests[1].headers["X-Project-Id"] == fresh_sim.info.project_id
    list(client.iter_images(max_items=1))
    assert len(sent.matching("GET", "^/v3/projects$")) == 1


# --- IAM password login ---------------------------------------------------------------------------


def password_client(
    connect_sim: Callable[..., ImsClient], users: dict[str, Any], password: str | None = None
) -> ImsClient:
    operator = users["users"][0]
    return connect_sim(
        ak=None,
        sk=None,
        project_id=None,
        username=operator["name"],
        password=password or operator["password"],
        domain=users["domain_name"],
    )


def test_a_password_login_lists_and_exports_with_one_token(
    connect_sim: Callable[..., ImsClient], sim_users: dict[str, Any], sent: Any, exportable: list[dict[str, Any]]
) -> None:
    client = password_client(connect_sim, sim_users)
    assert len(list(client.iter_images(max_items=30))) == 30
    assert client.project_id == sim_users["project_id"]
    image = exportable[0]
    job_id = client.export_image(image["id"], f"{BUCKET}:t/{image['id']}.qcow2", "qcow2")
    assert client.job(job_id)["job_id"] == job_id
    assert client.job_progress(job_id)["status"] == "INIT"
    assert len(client.images(max_items=3)) == 3
    logins = sent.matching("POST", "^/v3/auth/tokens$")
    assert len(logins) == 1 and len(sent) >= 6
    tokens = {r.headers.get("X-Auth-Token") for r in sent.requests if r not in logins}
    assert len(tokens) == 1 and None not in tokens
    assert all("Authorization" not in r.headers for r in sent.requests)


def test_an_expired_token_is_renewed_transparently(
    connect_sim: Callable[..., ImsClient], sim_users: dict[str, Any], sent: Any, control: httpx.Client
) -> None:
    client = password_client(connect_sim, sim_users)
    first = [i["id"] for i in client.iter_images(max_items=5)]
    assert control.post("/tokens/expire").json()["expired"] == 1
    assert [i["id"] for i in client.iter_images(max_items=5)] == first
    assert len(sent.matching("POST", "^/v3/auth/tokens$")) == 2
    tokens = [r.headers["X-Auth-Token"] for r in sent.matching("GET", LIST)]
    assert len(tokens) == 3 and tokens[0] == tokens[1] != tokens[2]  # refused once with the old token
    list(client.iter_images(max_items=5))
    assert len(sent.matching("POST", "^/v3/auth/tokens$")) == 2


def test_a_wrong_password_is_an_auth_error_in_iam_shape(
    connect_sim: Callable[..., ImsClient], sim_users: dict[str, Any], sent: Any
) -> None:
    client = password_client(connect_sim, sim_users, password="Operator-wrong")
    with pytest.raises(AuthError) as raised:
        list(client.iter_images(max_items=1))
    error = raised.value
    assert (error.status, error.code, error.message) == (401, "401", "The username or password is wrong.")
    assert REQUEST_ID.match(error.request_id or "") and error.url.endswith("/v3/auth/tokens")
    assert "Operator-wrong" not in str(error) + repr(error)
    assert len(sent) == 1  # refused logins are not retried


def test_obs_calls_of_a_password_login_use_temporary_ak_sk(
    connect_sim: Callable[..., ImsClient], sim_users: dict[str, Any], sent: Any
) -> None:
    assert password_client(connect_sim, sim_users).bucket(BUCKET).exists  # tests/client/test_temporary_...
    (head,) = sent.matching("HEAD", f"^/{BUCKET}$")
    assert "x-obs-security-token" in head.headers and len(sent.matching("POST", "securitytokens$")) == 1


# --- OBS ------------------------------------------------------------------------------------------


EXPECTED_BUCKETS = {
    "ims-exports-cn-north-4": ("cn-north-4", "STANDARD"),
    "ims-exports-scratch": ("cn-north-4", "STANDARD"),
    "ims-archive-warm": ("cn-north-4", "WARM"),
    "ims-archive-cold": ("cn-north-4", "COLD"),
    "ims-archive-deep": ("cn-north-4", "DEEP_ARCHIVE"),
    "ims-exports-ap-southeast-1": ("ap-southeast-1", "STANDARD"),
}


def test_bucket_reports_region_class_and_existence_once(sim_client: ImsClient, sent: Any) -> None:
    for name, (region, storage_class) in EXPECTED_BUCKETS.items():
        info = sim_client.bucket(name)
        assert (info.name, info.exists, info.region, info.storage_class) == (name, True, region, storage_class)
    missing = sim_client.bucket("ims-no-such-bucket")
    assert (missing.exists, missing.region, missing.storage_class) == (False, None, None)
    assert len(sent) == 7 and all(r.method == "HEAD" for r in sent.requests)
    for name in [*EXPECTED_BUCKETS, "ims-no-such-bucket"]:
        sim_client.bucket(name)
    assert len(sent) == 7  # cached per client


def test_objects_and_the_bucket_list(sim_client: ImsClient, sent: Any) -> None:
    assert sim_client.object_size(BUCKET, "README.txt") == 512
    assert sim_client.object_exists(BUCKET, "exports/centos79-gateway-00016.qcow2")
    assert sim_client.object_size(BUCKET, "exports/centos79-gateway-00016.qcow2") == 4 * 1024**3
    assert sim_client.object_size(BUCKET, "no/such key.qcow2") is None
    assert not sim_client.object_exists("ims-archive-warm", "README.txt")
    assert sim_client.object_size("ims-no-such-bucket", "README.txt") is None
    assert len(sent) == 6  # objects are not cached
    with pytest.raises(ConfigError):
        sim_client.object_size(BUCKET, "")
    listed = {b.name: (b.exists, b.region) for b in sim_client.buckets()}
    assert listed == {name: (True, region) for name, (region, _) in EXPECTED_BUCKETS.items()}


@pytest.mark.parametrize("key", ["dir/a b+c.txt", "中文/文件.qcow2", "x?y#z.txt", "a%20b.txt", "~t/k=v&w.txt", "a//b"])
def test_object_keys_are_signed_as_sent(sim_client: ImsClient, control: httpx.Client, key: str) -> None:
    assert sim_client.object_size("ims-exports-scratch", key) is None
    control.post("/objects", json={"bucket": "ims-exports-scratch", "key": key, "size": 7}).raise_for_status()
    assert sim_client.object_size("ims-exports-scratch", key) == 7


# --- to_async ---------------------------------------------------------------------------------------


async def first_ids(client: AsyncImsClient, count: int) -> list[str]:
    async with client:
        return [i["id"] async for i in client.iter_images(max_items=count)]


def test_the_async_twin_lists_the_same_images_from_the_simulator(connect_sim: Callable[..., ImsClient]) -> None:
    client = connect_sim(transport=None)
    twin = client.to_async()
    assert isinstance(twin, AsyncImsClient)
    assert (twin.region, twin.endpoints, twin.project_id) == (client.region, client.endpoints, client.project_id)
    assert twin.settings.retry is client.settings.retry
    assert asyncio.run(first_ids(twin, 5)) == [i["id"] for i in client.iter_images(max_items=5)]


def test_the_async_twin_does_not_own_the_embedded_simulator() -> None:
    with pytest.warns(SimulatorWarning), ims_nb.connect(simulator={"images": 3, "manual_clock": True}) as client:
        embedded = client.settings.simulator
        twin = client.to_async()
        assert isinstance(embedded, Simulator) and twin.settings.simulator is None
        assert twin.settings.is_simulator
        assert len(asyncio.run(first_ids(twin, 3))) == 3  # and closes the twin
        assert client.settings.simulator is embedded
        assert next(client.iter_images(max_items=1))["id"]  # the simulator outlived the twin


@pytest.mark.parametrize("transport", [httpx.HTTPTransport, None])
def test_a_synchronous_only_transport_cannot_make_an_async_twin(
    connect_sim: Callable[..., ImsClient], transport: type[httpx.BaseTransport] | None
) -> None:
    client = connect_sim(transport=transport()) if transport else connect_sim()  # None: the RecordingTransport
    name = type(client.settings.transport).__name__
    with pytest.raises(ConfigError, match=f"transport \\({name}\\) is synchronous only.*connect_async"):
        client.to_async()


def test_a_transport_that_is_also_async_carries_over_to_the_twin(connect_sim: Callable[..., ImsClient]) -> None:
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        return httpx.Response(200, json={"images": [{"id": "mocked"}]})

    twin = connect_sim(transport=httpx.MockTransport(answer)).to_async()
    assert asyncio.run(first_ids(twin, 1)) == ["mocked"]
    assert seen == ["/v2/cloudimages"]
