"""GET /v2/cloudimages on the simulator: every documented filter, sorting and marker paging."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

IMAGES = "/v2/cloudimages"


def _list(ims: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    response = ims.get(IMAGES, params=params)
    assert response.status_code == 200, response.text
    return list(response.json()["images"])


def _all(ims: httpx.Client, limit: int, **params: Any) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    marker = None
    while True:
        page = _list(ims, limit=limit, **params, **({"marker": marker} if marker else {}))
        seen += page
        if len(page) < limit:
            return seen
        marker = page[-1]["id"]


def test_marker_paging_visits_every_image_once(ims: httpx.Client) -> None:
    everything = _list(ims, limit=1000)
    paged = _all(ims, limit=17)
    assert [i["id"] for i in paged] == [i["id"] for i in everything]
    assert len({i["id"] for i in paged}) == len(paged) == 200


def test_default_limit_and_order(ims: httpx.Client) -> None:
    default = _list(ims)
    assert len(default) == 200  # under the default limit of 500
    created = [i["created_at"] for i in default]
    assert created == sorted(created, reverse=True)


@pytest.mark.parametrize("sort_key", ["name", "status", "id", "size", "created_at", "disk_format"])
@pytest.mark.parametrize("sort_dir", ["asc", "desc"])
def test_sorting(ims: httpx.Client, sort_key: str, sort_dir: str) -> None:
    images = _list(ims, sort_key=sort_key, sort_dir=sort_dir, limit=1000)
    values = [int(i["__image_size"]) if sort_key == "size" else i[sort_key] for i in images]
    assert values == sorted(values, reverse=sort_dir == "desc")


@pytest.mark.parametrize(
    ("params", "check"),
    [
        ({"__imagetype": "private"}, lambda i: i["__imagetype"] == "private"),
        ({"__imagetype": "gold"}, lambda i: i["__imagetype"] == "gold" and i["visibility"] == "public"),
        ({"visibility": "shared"}, lambda i: i["visibility"] == "shared"),
        ({"status": "saving"}, lambda i: i["status"] == "saving"),
        ({"__platform": "Ubuntu"}, lambda i: i["__platform"] == "Ubuntu"),
        ({"__os_type": "Windows"}, lambda i: i["__os_type"] == "Windows"),
        ({"__os_bit": "64"}, lambda i: i["__os_bit"] == "64"),
        ({"virtual_env_type": "IsoImage"}, lambda i: i["virtual_env_type"] == "IsoImage"),
        ({"architecture": "arm"}, lambda i: i["architecture"] == "arm"),
        ({"disk_format": "zvhd2"}, lambda i: i["disk_format"] == "zvhd2"),
        ({"container_format": "bare"}, lambda i: i["container_format"] == "bare"),
        ({"protected": "true"}, lambda i: i["protected"] is True),
        ({"__whole_image": "true"}, lambda i: i["__whole_image"] is True),
        ({"__isregistered": "true"}, lambda i: i["__isregistered"] == "true"),
        ({"__support_kvm": "true"}, lambda i: i["__support_kvm"] == "true"),
        ({"min_disk": 40}, lambda i: i["min_disk"] == 40),
        ({"tag": "env=prod"}, lambda i: "env.prod" in i["tags"]),
        ({"created_at": "gt:2025-06-01T00:00:00Z"}, lambda i: i["created_at"] > "2025-06-01T00:00:00Z"),
        ({"created_at": "lte:2024-01-01 00:00:00"}, lambda i: i["created_at"] <= "2024-01-01T00:00:00Z"),
        ({"updated_at": "gte:2025-01-01T00:00:00Z"}, lambda i: i["updated_at"] >= "2025-01-01T00:00:00Z"),
        ({"enterprise_project_id": "0"}, lambda i: i["enterprise_project_id"] == "0"),
        ({"flavor_id": "s6.small.1"}, lambda i: i["min_ram"] <= 1024 and i["virtual_env_type"] == "FusionCompute"),
        ({"visibility": "shared", "member_status": "accepted"}, lambda i: i["visibility"] == "shared"),
    ],
)
def test_filters(ims: httpx.Client, params: dict[str, Any], check: Any) -> None:
    images = _list(ims, limit=1000, **params)
    assert images, f"the seeded inventory has images matching {params}"
    everything = _list(ims, limit=1000)
    assert [i["id"] for i in images] == [i["id"] for i in everything if check(i)]


def test_exact_name_and_id_and_owner(ims: httpx.Client) -> None:
    some = _list(ims, limit=3)[2]
    assert [i["id"] for i in _list(ims, name=some["name"])] == [some["id"]]
    assert [i["id"] for i in _list(ims, id=some["id"])] == [some["id"]]
    assert _list(ims, name=some["name"][:-1]) == []
    owned = _list(ims, owner=some["owner"], limit=1000)
    assert owned and all(i["owner"] == some["owner"] for i in owned)


def test_all_granted_eps_lists_every_project(ims: httpx.Client) -> None:
    assert len(_list(ims, enterprise_project_id="all_granted_eps", limit=1000)) == 200


def test_filters_combine_and_page(ims: httpx.Client) -> None:
    params = {"__imagetype": "private", "status": "active", "sort_key": "size", "sort_dir": "asc"}
    whole = _list(ims, limit=1000, **params)
    assert [i["id"] for i in _all(ims, limit=7, **params)] == [i["id"] for i in whole]


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "0"},
        {"limit": "1001"},
        {"limit": "ten"},
        {"sort_key": "colour"},
        {"sort_dir": "up"},
        {"created_at": "after:2024-01-01T00:00:00Z"},
        {"created_at": "gt:yesterday"},
        {"protected": "yes"},
        {"__imagetype": "secret"},
        {"min_disk": "-1"},
        {"tag": "novalue"},
        {"member_status": "accepted"},
        {"marker": "not-an-image"},
        {"colour": "blue"},
    ],
)
def test_invalid_queries_get_an_ims_error(ims: httpx.Client, params: dict[str, str]) -> None:
    response = ims.get(IMAGES, params=params)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "IMG.0001"
    assert list(params)[0] in response.json()["error"]["message"] or "marker" in response.json()["error"]["message"]


def test_repeated_parameters_are_refused(ims: httpx.Client) -> None:
    response = ims.get(IMAGES, params=[("status", "active"), ("status", "queued")])
    assert response.status_code == 400 and "more than once" in response.json()["error"]["message"]


def test_show_image_native_shape(ims: httpx.Client) -> None:
    some = _list(ims, limit=1)[0]
    shown = ims.get(f"/v2/images/{some['id']}").json()
    assert shown["id"] == some["id"] and "__image_location" in shown and shown["deleted"] is False
    missing = ims.get("/v2/images/00000000-0000-0000-0000-000000000000")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "IMG.0027"


def test_quota(ims: httpx.Client) -> None:
    resources = ims.get("/v1/cloudimages/quota").json()["quotas"]["resources"]
    image = next(r for r in resources if r["type"] == "image")
    assert image["used"] <= image["quota"] and {r["type"] for r in resources} == {
        "image",
        "image_shared",
        "image_member",
    }
