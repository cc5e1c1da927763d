"""``ims-nb sim --state PATH``: kill the process, start it again, and nothing is lost."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from ims_nb.client.auth import AkSkAuth, ObsAuth


@contextmanager
def running_sim(*args: str, stop: signal.Signals = signal.SIGTERM) -> Iterator[dict[str, Any]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "ims_nb", "sim", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line, process.stderr.read() if process.stderr else "no output"
        info = json.loads(line)
        assert set(info) == {"endpoint", "region", "project_id", "ak", "sk"}
        yield info
    finally:
        process.send_signal(stop)
        process.wait(timeout=15)


def _ims(info: dict[str, Any]) -> httpx.Client:
    return httpx.Client(base_url=info["endpoint"], auth=AkSkAuth(info["ak"], info["sk"], project_id=info["project_id"]))


def _all_image_ids(client: httpx.Client) -> list[str]:
    return [image["id"] for image in client.get("/v2/cloudimages", params={"limit": 1000}).json()["images"]]


def _exportable(state_images: list[dict[str, Any]], count: int) -> list[str]:
    ok = [
        i["id"]
        for i in state_images
        if i["visibility"] == "private"
        and i["status"] == "active"
        and i["virtual_env_type"] == "FusionCompute"
        and not i["__whole_image"]
        and not i["__productcode"]
        and not i.get("__system__cmkid")
        and (not i["__originalimagename"] or i["__platform"] in ("CentOS", "Debian", "EulerOS"))
        and int(i["__image_size"]) < 100 * 1024**3
    ]
    return ok[:count]


def _world(info: dict[str, Any], job_ids: list[str]) -> dict[str, Any]:
    with _ims(info) as ims, httpx.Client(base_url=info["endpoint"], auth=ObsAuth(info["ak"], info["sk"])) as obs:
        state = httpx.get(info["endpoint"] + "/_sim/state").json()
        return {
            "images": _all_image_ids(ims),
            "buckets": obs.get("/").text.split("<Buckets>")[1],
            "objects": sorted((o["bucket"], o["key"]) for o in state["objects"]),
            "extra_object": obs.head("/ims-exports-scratch/kept/by-control.qcow2").status_code,
            "jobs": [ims.get(f"/v1/cloudimages/job/{job_id}").json() for job_id in job_ids],
            "clock": state["clock"]["now"],
        }


def test_kill_and_restart_loses_nothing(tmp_path: Path) -> None:
    state_file = tmp_path / "sim.sqlite"
    options = ("--seed", "3", "--images", "120", "--manual-clock", "--state", str(state_file))
    with running_sim(*options, stop=signal.SIGKILL) as info:
        with _ims(info) as ims:
            images = ims.get("/v2/cloudimages", params={"limit": 1000}).json()["images"]
            job_ids = []
            for n, image_id in enumerate(_exportable(images, 3)):
                body = {"bucket_url": f"ims-exports-cn-north-4:persist/{n}.qcow2", "file_format": "qcow2"}
                response = ims.post(f"/v1/cloudimages/{image_id}/file", json=body)
                assert response.status_code == 200, response.text
                job_ids.append(response.json()["job_id"])
            httpx.post(
                info["endpoint"] + "/_sim/objects",
                json={"bucket": "ims-exports-scratch", "key": "kept/by-control.qcow2", "size": 10},
            )
            httpx.post(info["endpoint"] + "/_sim/clock", json={"advance": 600})
        before = _world(info, job_ids)
    assert {job["status"] for job in before["jobs"]} & {"INIT", "RUNNING"}, "some job must still be live"

    # Restarted with other seed/image flags: the state file wins over them.
    with running_sim("--seed", "9", "--images", "50", "--manual-clock", "--state", str(state_file)) as info:
        after = _world(info, job_ids)
        assert after == before
        httpx.post(info["endpoint"] + "/_sim/clock", json={"advance": 10 * 86400})
        finished = _world(info, job_ids)
    assert {job["status"] for job in finished["jobs"]} <= {"SUCCESS", "FAIL"}
    succeeded = [j for j in finished["jobs"] if j["status"] == "SUCCESS"]
    assert succeeded, "the seeded failure rate is a few percent"


def test_a_scaled_clock_keeps_running_across_a_restart(tmp_path: Path) -> None:
    state_file = tmp_path / "scaled.sqlite"
    with running_sim("--time-scale", "3600", "--state", str(state_file)) as info:
        first = httpx.get(info["endpoint"] + "/_sim/clock").json()["timestamp"]
    with running_sim("--time-scale", "3600", "--state", str(state_file)) as info:
        second = httpx.get(info["endpoint"] + "/_sim/clock").json()["timestamp"]
    assert second > first  # simulated time went on, and never backwards
