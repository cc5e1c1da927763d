"""The control plane and injected faults: canned answers, malformed bodies, latency, dropped connections."""

from __future__ import annotations

import time

import httpx
import pytest

from ims_nb.sim import Simulator
from ims_nb.sim.control import is_loopback

IMAGES = "/v2/cloudimages"


def test_reset_reseeds_the_world(control: httpx.Client, ims: httpx.Client) -> None:
    first = ims.get(IMAGES, params={"limit": 5}).json()["images"]
    seed0_project = control.get("/credentials").json()["project_id"]
    state = control.post("/reset", json={"seed": 11, "images": 60}).json()
    assert state["seed"] == 11 and state["images"] == 60 and state["jobs"] == []
    assert control.get("/credentials").json()["project_id"] == state["project_id"] != seed0_project
    control.post("/reset", json={"seed": 0, "images": 200})
    assert ims.get(IMAGES, params={"limit": 5}).json()["images"] == first


def test_clock_advance_and_mode(control: httpx.Client) -> None:
    start = control.get("/clock").json()
    assert start["manual"] is True and start["now"] == "2026-01-01T00:00:00.000Z"
    moved = control.post("/clock", json={"advance": 90.5}).json()
    assert moved["now"] == "2026-01-01T00:01:30.500Z"
    assert control.post("/clock", json={"advance": -5}).status_code == 400
    assert control.post("/clock", json={"advance": "soon"}).status_code == 400
    scaled = control.post("/clock", json={"manual": False, "scale": 1000}).json()
    time.sleep(0.05)
    assert control.get("/clock").json()["timestamp"] > scaled["timestamp"]
    control.post("/clock", json={"manual": True})


def test_a_canned_response_fault_serves_malformed_json_then_stops(control: httpx.Client, ims: httpx.Client) -> None:
    control.post(
        "/faults",
        json={"kind": "response", "path": "^/v2/cloudimages$", "count": 2, "status": 200, "body": '{"images": [tru'},
    ).raise_for_status()
    for _ in range(2):
        response = ims.get(IMAGES)
        assert response.status_code == 200
        with pytest.raises(ValueError):
            response.json()
    assert ims.get(IMAGES, params={"limit": 1}).json()["images"]
    assert control.get("/faults").json()["faults"] == []


def test_status_faults_match_method_and_path(control: httpx.Client, ims: httpx.Client) -> None:
    body = '{"error_msg": "backend unavailable", "error_code": "APIGW.0201"}'
    control.post(
        "/faults",
        json={"kind": "response", "method": "GET", "path": "/jobs?/", "status": 503, "body": body, "count": None},
    ).raise_for_status()
    assert ims.get(IMAGES, params={"limit": 1}).status_code == 200
    assert ims.get("/v1/cloudimages/job/abc").status_code == 503
    assert ims.get("/v1/cloudimages/job/abc").status_code == 503  # count None: until cleared
    control.delete("/faults").raise_for_status()
    unknown = ims.get("/v1/cloudimages/job/abc")
    assert unknown.status_code == 400 and unknown.json()["error"]["code"] == "IMG.0086"


def test_throttle_fault_answers_429_in_gateway_shape(control: httpx.Client, ims: httpx.Client) -> None:
    control.post("/faults", json={"kind": "throttle", "count": 1})
    response = ims.get(IMAGES, params={"limit": 1})
    assert response.status_code == 429 and response.json()["error_code"] == "APIGW.0308"


def test_latency_fault_outlasts_a_client_timeout(control: httpx.Client, fresh_sim: Simulator) -> None:
    control.post("/faults", json={"kind": "latency", "delay": 1.0, "count": 1})
    info = fresh_sim.info
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(info.endpoint + IMAGES, timeout=0.2)


def test_drop_fault_closes_the_connection_without_an_answer(control: httpx.Client, ims: httpx.Client) -> None:
    control.post("/faults", json={"kind": "drop", "method": "POST", "count": 1})
    with pytest.raises(httpx.RemoteProtocolError):
        ims.post("/v1/cloudimages/x/file", json={"bucket_url": "a:b", "file_format": "qcow2"})
    assert ims.get(IMAGES, params={"limit": 1}).status_code == 200  # the server is fine afterwards


@pytest.mark.parametrize(
    "fault",
    [
        {"kind": "explode"},
        {"kind": "response", "status": 42},
        {"kind": "response", "count": 0},
        {"kind": "latency", "delay": -1},
        {"kind": "response", "path": "("},
        {"kind": "drop", "colour": "red"},
    ],
)
def test_invalid_faults_are_refused(control: httpx.Client, fault: dict[str, object]) -> None:
    response = control.post("/faults", json=fault)
    assert response.status_code == 400 and response.json()["error_code"] == "SIM.0400"


def test_control_plane_errors(control: httpx.Client) -> None:
    assert control.post("/nothing").status_code == 404
    assert control.post("/reset", content=b"{not json").status_code == 400
    assert control.post("/reset", json={"seed": -1}).status_code == 400
    assert control.post("/objects", json={"bucket": "no-such-bucket", "key": "k"}).status_code == 400


def test_control_plane_is_loopback_only() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("127.8.9.10")
    assert not is_loopback("10.0.0.8") and not is_loopback(None) and not is_loopback("example")


def test_state_dump_lists_jobs_with_their_targets(
    control: httpx.Client, ims: httpx.Client, fresh_sim: Simulator
) -> None:
    image = next(
        i
        for i in fresh_sim.backend.images.values()
        if i["owner"] == fresh_sim.info.project_id
        and i["status"] == "active"
        and i["virtual_env_type"] == "FusionCompute"
        and not i["__whole_image"]
        and not i["__originalimagename"]
        and not i["__productcode"]
        and int(i["__image_size"]) < 128 * 1024**3
    )
    job = ims.post(
        f"/v1/cloudimages/{image['id']}/file",
        json={"bucket_url": "ims-exports-scratch:dump.vmdk", "file_format": "vmdk"},
    ).json()["job_id"]
    jobs = control.get("/state").json()["jobs"]
    assert [(j["job_id"], j["bucket_url"]) for j in jobs] == [(job, "ims-exports-scratch:dump.vmdk")]
