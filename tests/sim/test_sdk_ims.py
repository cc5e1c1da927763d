"""Conformance: the official ``huaweicloudsdkims`` / ``huaweicloudsdkcore``, unchanged, against the simulator.

Every call below goes through the real SDK (signing, URL building, JSON (de)serialisation, error mapping);
the simulator's control plane (``/_sim/...``) is only used to move the clock, read state and credentials.
Expected results are computed from the seeded inventory records, independently of the listing code.
"""

from __future__ import annotations

import contextlib
import json
import selectors
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from huaweicloudsdkcore.auth.credentials import BasicCredentials, Credentials
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException, SdkException
from huaweicloudsdkcore.http.http_config import HttpConfig
from huaweicloudsdkcore.region.region import Region
from huaweicloudsdkims.v2 import (
    ExportImageInSafeModeRequest,
    ExportImageRequest,
    ExportImageRequestBody,
    GlanceShowImageRequest,
    ImageInfo,
    ImsClient,
    ListImagesRequest,
    ShowImageQuotaRequest,
    ShowJobProgressRequest,
    ShowJobRequest,
)

from ims_nb.client.auth import AkSkAuth
from ims_nb.sim import Simulator

GiB = 1024**3
PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent
BUCKET = "ims-exports-cn-north-4"
RESTRICTED = ("Windows", "SUSE", "Red Hat", "RedHat", "Ubuntu", "Oracle Linux")
PAGE = 64  # 200 images -> several pages, so every listing below also exercises the marker

Record = dict[str, Any]


# --- helpers ----------------------------------------------------------------------------------


def sdk_client(endpoint: str, ak: str, sk: str, project_id: str) -> ImsClient:
    config = HttpConfig.get_default_config()
    config.timeout = (5, 15)
    credentials = BasicCredentials(ak, sk, project_id)
    return (
        ImsClient.new_builder()
        .with_http_config(config)
        .with_credentials(credentials)
        .with_endpoints([endpoint])
        .build()
    )


def operator_client(sim: Simulator) -> ImsClient:
    info = sim.info
    return sdk_client(info.endpoint, info.ak, info.sk, info.project_id)


def user_client(sim: Simulator, plane: httpx.Client, name: str) -> ImsClient:
    creds = plane.get("/_sim/credentials").raise_for_status().json()
    user = next(u for u in creds["users"] if u["name"] == name)
    return sdk_client(sim.endpoint, user["ak"], user["sk"], creds["project_id"])


def advance(plane: httpx.Client, seconds: float) -> None:
    plane.post("/_sim/clock", json={"advance": seconds}).raise_for_status()


def reset_lockouts(plane: httpx.Client) -> None:
    plane.post("/_sim/lockouts/reset").raise_for_status()


@pytest.fixture(scope="module")
def plane(sim: Simulator) -> Iterator[httpx.Client]:
    """One kept-alive client for the session simulator's control plane (a bare ``httpx.post`` pays ~20 ms)."""
    with httpx.Client(base_url=sim.endpoint, timeout=10) as client:
        yield client


@pytest.fixture(scope="module")
def seeded(sim: Simulator, plane: httpx.Client) -> Simulator:
    """The session simulator reset once (seed 0, 200 images) for this module's read-only tests.

    Like ``fresh_sim`` but once per module: nothing in this module changes the images, and listing,
    quota and image details do not depend on jobs or the clock.
    """
    plane.post("/_sim/reset", json={"seed": 0, "images": 200}).raise_for_status()
    plane.post("/_sim/throttle", json={"rate": None}).raise_for_status()
    return sim


def list_all(client: ImsClient, limit: int = PAGE, **filters: Any) -> tuple[list[ImageInfo], list[Record]]:
    """Every image matching ``filters``, paged with ``marker`` until a short page.

    Returns the SDK models and the raw JSON items side by side, after checking that the SDK parsed
    every field it models to exactly the value (and type) on the wire.
    """
    models: list[ImageInfo] = []
    raw: list[Record] = []
    marker = None
    for _ in range(1000):
        request = ListImagesRequest(limit=limit, marker=marker, **filters)
        response = client.list_images(request)
        assert response.status_code == 200
        page_raw = json.loads(response.raw_content)["images"]
        assert [m.id for m in response.images] == [r["id"] for r in page_raw]
        models += response.images
        raw += page_raw
        if len(response.images) < limit:
            break
        marker = response.images[-1].id
    else:
        pytest.fail("the listing never returned a short page")
    for model, item in zip(models, raw, strict=True):
        for attr, wire in ImageInfo.attribute_map.items():
            if wire in item:
                value = getattr(model, attr)
                assert value == item[wire] and type(value) is type(item[wire]), (item["id"], wire)
    return models, raw


def refused(call: Callable[[], Any]) -> ClientRequestException:
    with pytest.raises(ClientRequestException) as caught:
        call()
    error = caught.value
    assert error.request_id, "the SDK found no X-Request-Id"
    assert error.error_msg
    return error


def export(
    client: ImsClient, image_id: str, bucket_url: str, file_format: str | None = "qcow2", quick: bool | None = None
) -> str:
    body = ExportImageRequestBody(bucket_url=bucket_url, file_format=file_format, is_quick_export=quick)
    response = client.export_image(ExportImageRequest(image_id=image_id, body=body))
    assert response.status_code == 200
    assert len(response.job_id) == 32 and int(response.job_id, 16) >= 0
    return str(response.job_id)


def run_job_to_end(client: ImsClient, plane: httpx.Client, job_id: str, step: float = 20.0) -> list[tuple[str, float]]:
    """Advance the clock in steps, reading both job APIs each time, until the job ends."""
    seen: list[tuple[str, float]] = []
    for _ in range(2000):
        job = client.show_job(ShowJobRequest(job_id=job_id))
        progress = client.show_job_progress(ShowJobProgressRequest(job_id=job_id))
        assert job.status == progress.status
        assert job.job_id == progress.job_id == job_id
        assert job.job_type == progress.job_type == "imsNativeExportImageJob"
        assert job.begin_time == progress.begin_time and job.begin_time.endswith("Z")
        percent = progress.entities.process_percent
        assert isinstance(percent, float)
        seen.append((progress.status, percent))
        if job.status in ("SUCCESS", "FAIL"):
            assert job.end_time and job.end_time.endswith("Z")
            return seen
        assert job.end_time is None and job.error_code is None and job.fail_reason is None
        advance(plane, step)
    pytest.fail(f"job {job_id} never ended")


# --- the inventory: picking images of each category ---------------------------------------------

#: What makes an image exportable, one named check per refusal category.
CHECKS: dict[str, Callable[[Record], bool]] = {
    "private": lambda r: r["__imagetype"] == "private" and r["visibility"] == "private",
    "active": lambda r: r["status"] == "active",
    "not_whole": lambda r: r.get("__whole_image") is not True,
    "not_iso": lambda r: r["virtual_env_type"] in ("FusionCompute", "DataImage"),
    "not_market": lambda r: not r.get("__productcode"),
    "os_ok": lambda r: not (r.get("__originalimagename") and r.get("__platform") in RESTRICTED),
    "small": lambda r: int(r["__image_size"]) < 128 * GiB,
    "plain": lambda r: not r.get("__system__cmkid"),
}


def pick(
    records: list[Record], where: Callable[[Record], bool] = lambda r: True, relax: tuple[str, ...] = ()
) -> Record:
    """The first record matching ``where`` that passes every export check except the ``relax``ed ones."""
    for record in records:
        if where(record) and all(check(record) for name, check in CHECKS.items() if name not in relax):
            return record
    raise LookupError(f"no image in the inventory for {where} relaxing {relax}")


def exportable(records: list[Record]) -> Record:
    return pick(records)


def inventory(sim: Simulator) -> list[Record]:
    """The seeded records, in inventory order (the simulator keeps them in a dict)."""
    return list(sim.backend.images.values())


def derived_from(platform: str) -> Callable[[Record], bool]:
    return lambda r: bool(r["__originalimagename"]) and r["__platform"] == platform


# --- 1. the real CLI, driven only from its JSON line ------------------------------------------


def _read_line(proc: subprocess.Popen[bytes], timeout: float) -> bytes:
    assert proc.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            pytest.fail(f"ims_nb sim printed nothing within {timeout} s")
    return proc.stdout.readline()


def test_cli_simulator_serves_the_sdk_from_its_json_line(tmp_path: Path) -> None:
    stack = contextlib.ExitStack()
    stderr = stack.enter_context((tmp_path / "sim.stderr").open("wb"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "ims_nb", "sim", "--port", "0", "--seed", "0", "--manual-clock"],
        stdout=subprocess.PIPE,
        stderr=stderr,
        cwd=PROJECT_ROOT,
    )
    try:
        line = _read_line(proc, timeout=20)
        assert line.endswith(b"\n"), (line, (tmp_path / "sim.stderr").read_text())
        info = json.loads(line)
        assert set(info) == {"endpoint", "region", "project_id", "ak", "sk"}
        endpoint = info["endpoint"]
        client = sdk_client(endpoint, info["ak"], info["sk"], info["project_id"])
        http = stack.enter_context(httpx.Client(base_url=endpoint, timeout=10))

        models, raw = list_all(client, limit=37)
        ids = [m.id for m in models]
        state = http.get("/_sim/state").raise_for_status().json()
        assert len(ids) == state["images"] == 200
        assert len(set(ids)) == len(ids), "a page repeated an image"

        # ImageInfo drops __whole_image; the raw items still carry it, so pick from those.
        assert "__whole_image" not in ImageInfo.attribute_map.values()
        assert all(isinstance(r["__whole_image"], bool) for r in raw)
        candidates = [r for r in raw if r["owner"] == info["project_id"] and int(r["__image_size"]) < 32 * GiB]
        image = pick(candidates)
        job_id = export(client, image["id"], f"{BUCKET}:some/key.qcow2", "qcow2")

        seen = run_job_to_end(client, http, job_id)
        statuses = [s for s, _ in seen]
        percents = [p for _, p in seen]
        assert statuses[0] == "INIT" and percents[0] == 0.0
        assert "RUNNING" in statuses and statuses[-1] == "SUCCESS" and percents[-1] == 100.0
        order = {"INIT": 0, "RUNNING": 1, "SUCCESS": 2}
        assert [order[s] for s in statuses] == sorted(order[s] for s in statuses)
        assert percents == sorted(percents), "process_percent went backwards"
        running = [p for s, p in seen if s == "RUNNING"]
        assert all(0.0 <= p < 100.0 for p in running) and len(set(running)) > 1, "no progress while RUNNING"

        job = client.show_job(ShowJobRequest(job_id=job_id))
        assert job.entities.image_id == image["id"] and job.entities.image_name == image["name"]
        progress = client.show_job_progress(ShowJobProgressRequest(job_id=job_id))
        assert progress.entities.image_id == image["id"]

        # the exported file now exists: a second export to the same object is refused
        other = pick(candidates, where=lambda r: r["id"] != image["id"])
        error = refused(lambda: export(client, other["id"], f"{BUCKET}:some/key.qcow2"))
        assert (error.status_code, error.error_code) == (400, "IMG.0070")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
        stack.close()
    assert proc.returncode in (0, -signal.SIGTERM), (tmp_path / "sim.stderr").read_text()


# --- 2. project id discovered through IAM -----------------------------------------------------


def test_project_id_is_discovered_through_iam(fresh_sim: Simulator, monkeypatch: pytest.MonkeyPatch) -> None:
    info = fresh_sim.info
    monkeypatch.setattr(Credentials, "_CACHE", {})  # no project id left over from another test
    credentials = BasicCredentials(info.ak, info.sk).with_iam_endpoint(info.endpoint)
    assert credentials.project_id is None
    region = Region("cn-north-4", info.endpoint)
    client = ImsClient.new_builder().with_credentials(credentials).with_region(region).build()
    assert credentials.project_id == info.project_id  # only IAM GET /v3/projects?name=cn-north-4 knows it

    assert len(client.list_images(ListImagesRequest(limit=5)).images) == 5
    image = exportable(inventory(fresh_sim))
    job_id = export(client, image["id"], f"{BUCKET}:discovered/{image['name']}.qcow2")
    # show_job carries the discovered project id in its path
    assert client.show_job(ShowJobRequest(job_id=job_id)).status == "INIT"

    # the project is looked up by region name: a region the account has no project in fails
    stranger = BasicCredentials(info.ak, info.sk).with_iam_endpoint(info.endpoint)
    with pytest.raises(SdkException, match="Failed to get project id"):
        ImsClient.new_builder().with_credentials(stranger).with_region(Region("ap-southeast-1", info.endpoint)).build()


# --- 3. listing filters ---------------------------------------------------------------------


@dataclass(frozen=True)
class Filter:
    """SDK ListImagesRequest arguments, and the same condition on an inventory record.

    Image times are "YYYY-MM-DDTHH:MM:SSZ" strings, which compare in time order.
    """

    id: str
    kwargs: dict[str, Any]
    expect: Callable[[Record], bool]


FILTERS = [
    Filter("imagetype-gold", {"imagetype": "gold"}, lambda r: r["__imagetype"] == "gold"),
    Filter("imagetype-private", {"imagetype": "private"}, lambda r: r["__imagetype"] == "private"),
    Filter("imagetype-shared", {"imagetype": "shared"}, lambda r: r["__imagetype"] == "shared"),
    Filter("imagetype-market", {"imagetype": "market"}, lambda r: r["__imagetype"] == "market"),
    Filter("status-active", {"status": "active"}, lambda r: r["status"] == "active"),
    Filter("status-saving", {"status": "saving"}, lambda r: r["status"] == "saving"),
    Filter("platform-redhat", {"platform": "Red Hat"}, lambda r: r["__platform"] == "Red Hat"),
    Filter("platform-oracle", {"platform": "Oracle Linux"}, lambda r: r["__platform"] == "Oracle Linux"),
    Filter("os-type-windows", {"os_type": "Windows"}, lambda r: r["__os_type"] == "Windows"),
    Filter("visibility-public", {"visibility": "public"}, lambda r: r["visibility"] == "public"),
    Filter("visibility-shared", {"visibility": "shared"}, lambda r: r["visibility"] == "shared"),
    Filter("protected", {"protected": True}, lambda r: r["protected"] is True),
    Filter(
        "created-after", {"created_at": "gt:2025-01-01T00:00:00Z"}, lambda r: r["created_at"] > "2025-01-01T00:00:00Z"
    ),
    Filter(
        "created-before",
        {"created_at": "lte:2024-06-30T12:00:00Z"},
        lambda r: r["created_at"] <= "2024-06-30T12:00:00Z",
    ),
    Filter(
        "updated-before-space-format",
        {"updated_at": "lt:2025-01-01 00:00:00"},
        lambda r: r["updated_at"] < "2025-01-01T00:00:00Z",
    ),
    Filter("tag", {"tag": "env=prod"}, lambda r: "env.prod" in r["tags"]),
    Filter(
        "enterprise-project-default",
        {"enterprise_project_id": "0"},
        lambda r: (r.get("enterprise_project_id") or "0") == "0",
    ),
    Filter(
        "enterprise-project-uuid",
        {"enterprise_project_id": "5e2c0f3a-6c1d-4d8e-9b7a-2f4e6a8c0b13"},
        lambda r: r.get("enterprise_project_id") == "5e2c0f3a-6c1d-4d8e-9b7a-2f4e6a8c0b13",
    ),
    Filter("enterprise-project-all", {"enterprise_project_id": "all_granted_eps"}, lambda r: True),
    Filter("virtual-env-data", {"virtual_env_type": "DataImage"}, lambda r: r["virtual_env_type"] == "DataImage"),
    Filter("virtual-env-iso", {"virtual_env_type": "IsoImage"}, lambda r: r["virtual_env_type"] == "IsoImage"),
    Filter("architecture-arm", {"architecture": "arm"}, lambda r: r["architecture"] == "arm"),
    Filter(
        "combined",
        {"imagetype": "private", "status": "active", "platform": "CentOS", "os_type": "Linux"},
        lambda r: (
            (r["__imagetype"], r["status"], r["__platform"], r["__os_type"]) == ("private", "active", "CentOS", "Linux")
        ),
    ),
]


@pytest.mark.parametrize("case", FILTERS, ids=[f.id for f in FILTERS])
def test_list_filters_through_the_sdk(seeded: Simulator, case: Filter) -> None:
    expected = {r["id"] for r in inventory(seeded) if case.expect(r)}
    assert expected, f"the inventory has no image for {case.id}; the test would prove nothing"
    _, raw = list_all(operator_client(seeded), **case.kwargs)
    assert all(case.expect(r) for r in raw), "an image not matching the filter came back"
    assert {r["id"] for r in raw} == expected
    assert len(raw) == len(expected)


def test_list_name_is_an_exact_match(seeded: Simulator) -> None:
    client = operator_client(seeded)
    target = exportable(inventory(seeded))
    models, _ = list_all(client, name=target["name"])
    assert [m.id for m in models] == [target["id"]]
    assert list_all(client, name=target["name"][:-1])[0] == []  # a prefix is not a match
    assert list_all(client, name="Red Hat public image")[0][0].platform == "Red Hat"  # space in the value


@pytest.mark.parametrize(
    ("kwargs", "wire", "descending"),
    [
        ({}, "created_at", True),  # the default order
        ({"sort_key": "name", "sort_dir": "asc"}, "name", False),
        ({"sort_key": "name", "sort_dir": "desc"}, "name", True),
        ({"sort_key": "status", "sort_dir": "asc"}, "status", False),
        ({"sort_key": "created_at", "sort_dir": "asc"}, "created_at", False),
    ],
    ids=["default-created-desc", "name-asc", "name-desc", "status-asc", "created-asc"],
)
def test_list_sort_order_survives_paging(
    seeded: Simulator, kwargs: dict[str, Any], wire: str, descending: bool
) -> None:
    _, raw = list_all(operator_client(seeded), limit=23, **kwargs)
    assert len(raw) == len(seeded.backend.images)
    assert len({r["id"] for r in raw}) == len(raw)
    values = [r[wire] for r in raw]
    assert values == sorted(values, reverse=descending)
    assert len(set(values)) > 1


@pytest.mark.parametrize("flag", [True, False])
def test_list_whole_image_filter_via_raw_query(seeded: Simulator, flag: bool) -> None:
    """``__whole_image`` is documented but absent from the SDK's ListImagesRequest: sign the query ourselves."""
    info = seeded.info
    expected = {r["id"] for r in inventory(seeded) if r["__whole_image"] is flag}
    assert expected
    auth = AkSkAuth(info.ak, info.sk, project_id=info.project_id)
    with httpx.Client(base_url=info.endpoint, auth=auth) as client:
        response = client.get("/v2/cloudimages", params={"__whole_image": str(flag).lower(), "limit": 1000})
    assert response.status_code == 200, response.text
    images = response.json()["images"]
    assert all(image["__whole_image"] is flag for image in images)
    assert {image["id"] for image in images} == expected


def test_list_rejects_a_bad_filter_value(seeded: Simulator) -> None:
    client = operator_client(seeded)
    error = refused(lambda: client.list_images(ListImagesRequest(created_at="after:2025-01-01T00:00:00Z")))
    assert (error.status_code, error.error_code) == (400, "IMG.0001")
    error = refused(lambda: client.list_images(ListImagesRequest(marker=str(uuid.UUID(int=7)))))
    assert (error.status_code, error.error_code) == (400, "IMG.0001")


# --- 4. every refused category, with the IMG code the SDK reports ---------------------------


@dataclass(frozen=True)
class Refusal:
    id: str
    image: Callable[[list[Record]], str]
    code: str
    bucket_url: str = f"{BUCKET}:refusals/image.qcow2"
    file_format: str | None = "qcow2"
    quick: bool | None = None
    status: int = 400
    user: str = "ims-operator"
    before: dict[str, Any] = field(default_factory=dict)  # a prior accepted export of the same image


def _ok(records: list[Record]) -> str:
    return exportable(records)["id"]


def _where(relax: tuple[str, ...], where: Callable[[Record], bool]) -> Callable[[list[Record]], str]:
    return lambda records: pick(records, where, relax)["id"]


def _taken_key(records: list[Record]) -> str:
    """The object the inventory pre-creates: exports/<first active private image name>.qcow2."""
    first = next(r for r in records if r["visibility"] == "private" and r["status"] == "active")
    return f"exports/{first['name']}.qcow2"


REFUSALS = [
    # the IMS error-code table lists IMG.0027 under 400 (only GET /v2/images/{id} answers 404)
    Refusal("not-found", lambda records: str(uuid.UUID(int=1234567, version=4)), "IMG.0027"),
    Refusal("public-gold", _where(("private",), lambda r: r["__imagetype"] == "gold"), "IMG.0077"),
    Refusal("market", _where(("private", "not_market"), lambda r: r["__imagetype"] == "market"), "IMG.0078"),
    Refusal("market-derived-private", _where(("not_market",), lambda r: bool(r["__productcode"])), "IMG.0078"),
    Refusal("shared-other-tenant", _where(("private",), lambda r: r["__imagetype"] == "shared"), "IMG.0106"),
    Refusal("status-queued", _where(("active",), lambda r: r["status"] == "queued"), "IMG.0046"),
    Refusal("status-saving", _where(("active",), lambda r: r["status"] == "saving"), "IMG.0046"),
    Refusal("status-killed", _where(("active",), lambda r: r["status"] == "killed"), "IMG.0046"),
    Refusal("full-ecs", _where(("not_whole",), lambda r: r["__whole_image"] is True), "IMG.0128"),
    Refusal("iso", _where(("not_iso",), lambda r: r["virtual_env_type"] == "IsoImage"), "IMG.0167"),
    *[
        Refusal(f"derived-{platform.lower().replace(' ', '-')}", _where(("os_ok",), derived_from(platform)), "IMG.0071")
        for platform in ("Windows", "SUSE", "Red Hat", "Ubuntu", "Oracle Linux")
    ],
    Refusal(
        "size-exactly-1tib",
        _where(("small",), lambda r: int(r["__image_size"]) == 1024 * GiB),
        "IMG.0071",
        file_format=None,
        quick=True,
    ),
    Refusal(
        "size-over-1tib",
        _where(("small",), lambda r: int(r["__image_size"]) > 1024 * GiB),
        "IMG.0071",
        file_format=None,
        quick=True,
    ),
    Refusal(
        "over-128gib-normal-export",
        _where(("small",), lambda r: 128 * GiB < int(r["__image_size"]) < 1024 * GiB),
        "IMG.0160",
    ),
    Refusal(
        "encrypted-fast-export",
        _where(("plain",), lambda r: bool(r.get("__system__cmkid"))),
        "IMG.0071",
        file_format=None,
        quick=True,
    ),
    Refusal("format-raw", _ok, "IMG.0072", file_format="raw"),
    Refusal("format-zvhd2-normal", _ok, "IMG.0072", file_format="zvhd2"),
    Refusal("format-missing", _ok, "IMG.0001", file_format=None),
    Refusal("format-with-fast-export", _ok, "IMG.0001", file_format="qcow2", quick=True),
    Refusal("bucket-url-without-colon", _ok, "IMG.0017", bucket_url=f"{BUCKET}/image.qcow2"),
    Refusal("bucket-name-empty", _ok, "IMG.0068", bucket_url=":image.qcow2"),
    Refusal("bucket-name-uppercase", _ok, "IMG.0109", bucket_url="IMS-Exports:image.qcow2"),
    Refusal("bucket-name-underscore", _ok, "IMG.0109", bucket_url="ims_exports:image.qcow2"),
    Refusal("bucket-name-too-short", _ok, "IMG.0109", bucket_url="ab:image.qcow2"),
    Refusal("bucket-name-ip", _ok, "IMG.0109", bucket_url="192.168.1.10:image.qcow2"),
    Refusal("object-name-empty", _ok, "IMG.0073", bucket_url=f"{BUCKET}:"),
    Refusal("object-name-folder-only", _ok, "IMG.0073", bucket_url=f"{BUCKET}:exports/"),
    Refusal("object-name-too-long", _ok, "IMG.0074", bucket_url=f"{BUCKET}:{'a' * 124}.qcow2"),
    Refusal("object-name-space", _ok, "IMG.0175", bucket_url=f"{BUCKET}:my image.qcow2"),
    Refusal("object-name-bad-chars", _ok, "IMG.0075", bucket_url=f"{BUCKET}:image*?.qcow2"),
    Refusal("object-name-empty-folder", _ok, "IMG.0075", bucket_url=f"{BUCKET}:exports//image.qcow2"),
    Refusal("bucket-missing", _ok, "IMG.0069", bucket_url="ims-exports-nowhere:image.qcow2"),
    Refusal("bucket-other-region", _ok, "IMG.0058", bucket_url="ims-exports-ap-southeast-1:image.qcow2"),
    Refusal("bucket-warm", _ok, "IMG.0069", bucket_url="ims-archive-warm:image.qcow2"),
    Refusal("bucket-cold", _ok, "IMG.0069", bucket_url="ims-archive-cold:image.qcow2"),
    Refusal("bucket-deep-archive", _ok, "IMG.0069", bucket_url="ims-archive-deep:image.qcow2"),
    Refusal("object-exists", _ok, "IMG.0070", bucket_url="{taken}"),
    Refusal("already-exporting", _ok, "IMG.0148", before={"bucket_url": f"{BUCKET}:first/image.qcow2"}),
    Refusal("auditor-without-obs-permission", _ok, "IMG.0026", status=403, user="ims-auditor"),
]


@pytest.mark.parametrize("case", REFUSALS, ids=[c.id for c in REFUSALS])
def test_export_refusals_reach_the_sdk_with_their_img_code(
    fresh_sim: Simulator, plane: httpx.Client, case: Refusal
) -> None:
    records = inventory(fresh_sim)
    image_id = case.image(records)
    client = user_client(fresh_sim, plane, case.user)
    if case.before:
        export(operator_client(fresh_sim), image_id, case.before["bucket_url"])
    bucket_url = case.bucket_url.replace("{taken}", f"{BUCKET}:{_taken_key(records)}")
    error = refused(lambda: export(client, image_id, bucket_url, case.file_format, case.quick))
    assert (error.status_code, error.error_code) == (case.status, case.code), error.error_msg
    jobs = plane.get("/_sim/state").raise_for_status().json()["jobs"]
    assert len(jobs) == (1 if case.before else 0), "a refused export started a job"


@dataclass(frozen=True)
class Accepted:
    id: str
    where: Callable[[Record], bool]
    relax: tuple[str, ...] = ()
    file_format: str | None = "qcow2"
    quick: bool | None = None


ACCEPTED = [
    Accepted(
        "over-128gib-fast-export", lambda r: 128 * GiB < int(r["__image_size"]) < 1024 * GiB, ("small",), None, True
    ),
    Accepted(
        "just-under-1tib-fast-export", lambda r: 512 * GiB < int(r["__image_size"]) < 1024 * GiB, ("small",), None, True
    ),
    Accepted(
        "windows-imported-from-file",
        lambda r: r["__platform"] == "Windows" and r["__root_origin"] == "file",
        file_format="vhd",
    ),
    Accepted("encrypted-normal-export", lambda r: bool(r.get("__system__cmkid")), ("plain",)),
    Accepted("data-image", lambda r: r["virtual_env_type"] == "DataImage", file_format="vmdk"),
    Accepted("format-zvhd", lambda r: True, file_format="zvhd"),
    Accepted("fast-export-flag-false", lambda r: True, quick=False),
]


@pytest.mark.parametrize("case", ACCEPTED, ids=[a.id for a in ACCEPTED])
def test_export_accepts_the_permitted_neighbours_of_each_refusal(
    fresh_sim: Simulator, plane: httpx.Client, case: Accepted
) -> None:
    client = operator_client(fresh_sim)
    image = pick(inventory(fresh_sim), case.where, case.relax)
    job_id = export(client, image["id"], f"{BUCKET}:accepted/{image['name']}", case.file_format, case.quick)
    progress = client.show_job_progress(ShowJobProgressRequest(job_id=job_id))
    assert (progress.status, progress.entities.image_id) == ("INIT", image["id"])
    # the sub-job reveals which kind of export the service is running (a job runs for at least 20 s)
    while progress.status == "INIT":
        advance(plane, 10)
        progress = client.show_job_progress(ShowJobProgressRequest(job_id=job_id))
    assert progress.status == "RUNNING"
    assert progress.entities.current_task == ("imsQuickExportImageJob" if case.quick else "imsGoofysExportImageJob")


def test_a_finished_export_leaves_an_object_and_frees_the_image(fresh_sim: Simulator, plane: httpx.Client) -> None:
    client = operator_client(fresh_sim)
    records = inventory(fresh_sim)
    first = pick(records, lambda r: int(r["__image_size"]) < 16 * GiB)
    second = pick(records, lambda r: r["id"] != first["id"])
    target = f"{BUCKET}:done/{first['name']}.qcow2"
    job_id = export(client, first["id"], target)
    # while it runs, the image is busy but the target object does not exist yet
    error = refused(lambda: export(client, first["id"], f"{BUCKET}:done/again.qcow2"))
    assert error.error_code == "IMG.0148"
    assert run_job_to_end(client, plane, job_id, step=120)[-1] == ("SUCCESS", 100.0)
    error = refused(lambda: export(client, second["id"], target))
    assert (error.status_code, error.error_code) == (400, "IMG.0070")
    export(client, first["id"], f"{BUCKET}:done/again.qcow2")  # no longer being exported


# --- 5. gateway authentication ----------------------------------------------------------------


def test_wrong_secret_key_is_apigw_0301(fresh_sim: Simulator, plane: httpx.Client) -> None:
    info = fresh_sim.info
    try:
        client = sdk_client(info.endpoint, info.ak, info.sk[::-1], info.project_id)
        error = refused(lambda: client.list_images(ListImagesRequest(limit=1)))
        assert (error.status_code, error.error_code) == (401, "APIGW.0301")
        assert "signature" in error.error_msg
        # a single failure does not lock the AK: the right secret key still works
        assert operator_client(fresh_sim).show_image_quota(ShowImageQuotaRequest()).status_code == 200
    finally:
        reset_lockouts(plane)


def test_unknown_access_key_is_apigw_0301(fresh_sim: Simulator) -> None:
    info = fresh_sim.info
    client = sdk_client(info.endpoint, "AKUNKNOWN00000000000", info.sk, info.project_id)
    error = refused(lambda: client.show_image_quota(ShowImageQuotaRequest()))
    assert (error.status_code, error.error_code) == (401, "APIGW.0301")
    assert "ak not exist" in error.error_msg


def test_five_failures_lock_the_access_key(fresh_sim: Simulator, plane: httpx.Client) -> None:
    info = fresh_sim.info
    good = operator_client(fresh_sim)
    bad = sdk_client(info.endpoint, info.ak, "not-the-secret-key", info.project_id)
    try:
        for _ in range(5):
            assert refused(lambda: bad.list_images(ListImagesRequest(limit=1))).error_code == "APIGW.0301"
        error = refused(lambda: good.list_images(ListImagesRequest(limit=1)))
        assert (error.status_code, error.error_code) == (401, "APIGW.0301")
        assert "forbidden" in error.error_msg
        reset_lockouts(plane)
        assert len(good.list_images(ListImagesRequest(limit=1)).images) == 1
    finally:
        reset_lockouts(plane)


# --- 6. the other operations an exporter uses -----------------------------------------------


def test_export_image_in_safe_mode(fresh_sim: Simulator) -> None:
    client = operator_client(fresh_sim)
    image = exportable(inventory(fresh_sim))
    body = ExportImageRequestBody(bucket_url=f"{BUCKET}:safe/{image['name']}.vhd", file_format="vhd")
    response = client.export_image_in_safe_mode(ExportImageInSafeModeRequest(image_id=image["id"], body=body))
    assert response.status_code == 200 and len(response.job_id) == 32
    progress = client.show_job_progress(ShowJobProgressRequest(job_id=response.job_id))
    assert (progress.job_type, progress.entities.image_id) == ("imsNativeExportImageJob", image["id"])
    again = ExportImageInSafeModeRequest(image_id=image["id"], body=body)
    error = refused(lambda: client.export_image_in_safe_mode(again))
    assert (error.status_code, error.error_code) == (400, "IMG.0148")
    # the same judgement as /v1: a public image is refused
    gold = pick(inventory(fresh_sim), lambda r: r["__imagetype"] == "gold", ("private",))
    public = ExportImageInSafeModeRequest(image_id=gold["id"], body=body)
    error = refused(lambda: client.export_image_in_safe_mode(public))
    assert (error.status_code, error.error_code) == (400, "IMG.0077")


def test_show_image_quota(seeded: Simulator) -> None:
    response = operator_client(seeded).show_image_quota(ShowImageQuotaRequest())
    assert response.status_code == 200
    resources = {r.type: r for r in response.quotas.resources}
    assert set(resources) == {"image", "image_shared", "image_member"}
    owned = sum(1 for r in inventory(seeded) if r["owner"] == seeded.info.project_id)
    assert resources["image"].used == owned > 0
    for quota in resources.values():
        assert all(isinstance(v, int) for v in (quota.used, quota.quota, quota.min, quota.max))
        assert quota.min <= quota.quota <= quota.max and quota.used <= quota.quota


def test_glance_show_image(seeded: Simulator) -> None:
    client = operator_client(seeded)
    image = exportable(inventory(seeded))
    response = client.glance_show_image(GlanceShowImageRequest(image_id=image["id"]))
    assert response.status_code == 200
    assert (response.id, response.name, response.status) == (image["id"], image["name"], "active")
    assert (response.image_size, response.imagetype, response.platform) == (
        image["__image_size"],
        "private",
        image["__platform"],
    )
    assert response.min_disk == image["min_disk"] and response.protected is False
    assert response.tags == image["tags"]
    error = refused(lambda: client.glance_show_image(GlanceShowImageRequest(image_id=str(uuid.UUID(int=99)))))
    assert error.status_code == 404
