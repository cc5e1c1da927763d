"""The seeded world and its clock: determinism, the inventory's mix, and the job duration model."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime

import pytest

from ims_nb.sim import SimBackend, SimClock
from ims_nb.sim.backend import Principal
from ims_nb.sim.clock import SIM_EPOCH, iso_millis
from ims_nb.sim.inventory import build_inventory
from ims_nb.sim.jobs import THROUGHPUT_GIB_PER_HOUR, plan_job

GiB = 1024**3


class FakeTime:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_scaled_clock_runs_at_its_scale_and_advances() -> None:
    real = FakeTime()
    clock = SimClock(scale=60, real_time=real, start=SIM_EPOCH)
    real.now += 10
    assert clock.now() == SIM_EPOCH.timestamp() + 600
    clock.advance(30)
    assert clock.now() == SIM_EPOCH.timestamp() + 630
    clock.configure(scale=1)
    real.now += 5
    assert clock.now() == SIM_EPOCH.timestamp() + 635


def test_manual_clock_stands_still() -> None:
    real = FakeTime()
    clock = SimClock(manual=True, real_time=real)
    real.now += 1000
    assert clock.now_datetime() == SIM_EPOCH
    clock.advance(90)
    assert clock.now() == SIM_EPOCH.timestamp() + 90
    with pytest.raises(ValueError, match="forward"):
        clock.advance(-1)
    with pytest.raises(ValueError, match="positive"):
        SimClock(scale=0)


def test_job_times_have_milliseconds_and_z() -> None:
    assert iso_millis(datetime(2024, 11, 6, 6, 46, 51, 929000, tzinfo=UTC).timestamp()) == "2024-11-06T06:46:51.929Z"


def test_same_seed_same_world_other_seed_other_world() -> None:
    first, again, other = build_inventory(7, 300), build_inventory(7, 300), build_inventory(8, 300)
    assert json.dumps(first.images) == json.dumps(again.images)
    assert first.accounts == again.accounts and first.project_id == again.project_id
    assert first.images != other.images and first.accounts != other.accounts


def test_inventory_holds_every_special_category() -> None:
    inventory = build_inventory(0, 200)
    images = inventory.images
    assert len(images) == 200
    private = [i for i in images if i["__imagetype"] == "private"]
    sizes = [int(i["__image_size"]) for i in private]
    assert any(s > 128 * GiB for s in sizes) and any(s >= 1024 * GiB for s in sizes)
    assert any(i["__whole_image"] for i in private)
    assert any(i["virtual_env_type"] == "IsoImage" for i in private)
    assert any(i["virtual_env_type"] == "DataImage" for i in private)
    assert any(i.get("__system__cmkid") for i in private)
    assert any(i["__productcode"] for i in private)
    assert {i["status"] for i in private} >= {"active", "queued", "saving", "killed"}
    derived = {i["__platform"] for i in private if i["__originalimagename"]}
    assert derived >= {"Windows", "SUSE", "Red Hat", "Ubuntu", "Oracle Linux", "CentOS"}
    assert {i["__imagetype"] for i in images} == {"gold", "private", "shared", "market"}
    assert len({i["enterprise_project_id"] for i in private}) == 3
    assert all(i["tags"] for i in private)
    created = sorted(i["created_at"] for i in images)
    assert created[0] < "2023-06-01" and created[-1] < "2026-01-01"
    classes = Counter(b["storage_class"] for b in inventory.buckets)
    assert classes["STANDARD"] >= 2 and {"WARM", "COLD"} <= set(classes)
    assert any(b["location"] != inventory.region for b in inventory.buckets)


def test_wire_types_are_the_services() -> None:
    image = build_inventory(0, 50).images[-1]
    for name in ("__image_size", "__os_bit", "__isregistered", "__support_kvm", "__lazyloading"):
        assert isinstance(image[name], str), name
    assert isinstance(image["protected"], bool) and isinstance(image["__whole_image"], bool)
    assert isinstance(image["min_disk"], int) and image["size"] == 0


def test_size_distribution_is_heavy_tailed() -> None:
    sizes = sorted(int(i["__image_size"]) / GiB for i in build_inventory(1, 3000).images)
    median, p99 = sizes[len(sizes) // 2], sizes[int(len(sizes) * 0.99)]
    assert 5 < median < 40 and p99 > 128


def _plan(sequence: int, size: int, file_format: str = "qcow2", quick: bool = False) -> object:
    image = {"id": "i", "name": "n", "__image_size": str(size)}
    return plan_job(
        seed=0, sequence=sequence, image=image, bucket="b", key="k", file_format=file_format, quick=quick, now=0.0
    )


def test_job_durations_follow_the_stated_model() -> None:
    plans = [_plan(n, 100 * GiB) for n in range(200)]
    for plan in plans:
        assert 15 <= plan.started_at <= 240  # type: ignore[attr-defined]
        run = plan.planned_end - plan.started_at  # type: ignore[attr-defined]
        nominal = 100 / THROUGHPUT_GIB_PER_HOUR["qcow2"] * 3600
        assert nominal / 1.25 - 1 <= run <= nominal / 0.8 + 1
    fast = [_plan(n, 100 * GiB, quick=True) for n in range(50)]
    assert max(p.planned_end for p in fast) < min(p.planned_end for p in plans)  # type: ignore[attr-defined]
    failed = [p for p in plans if p.fail_code]  # type: ignore[attr-defined]
    assert 0 < len(failed) < 20
    assert all(p.fail_code.startswith("IMG.") and p.fail_reason for p in failed)  # type: ignore[attr-defined]


def test_job_state_is_derived_from_the_clock() -> None:
    plan = next(p for p in (_plan(n, 50 * GiB) for n in range(50)) if not p.fail_code)  # type: ignore[attr-defined]
    middle = (plan.started_at + plan.finished_at) / 2
    assert plan.view(0, progress=True)["status"] == "INIT"
    running = plan.view(middle, progress=True)
    assert running["status"] == "RUNNING" and 40 < running["entities"]["process_percent"] < 60
    assert running["end_time"] is None and running["error_code"] is None
    done = plan.view(plan.finished_at + 1, progress=False)
    assert done["status"] == "SUCCESS" and done["end_time"].endswith("Z")
    assert done["job_type"] == "imsNativeExportImageJob"
    failed = next(p for p in (_plan(n, 50 * GiB) for n in range(200)) if p.fail_code)  # type: ignore[attr-defined]
    view = failed.view(failed.finished_at + 1, progress=True)
    assert view["status"] == "FAIL" and view["error_code"] == failed.fail_code
    assert view["entities"]["process_percent"] < 100


def test_exports_are_deterministic_for_a_seed() -> None:
    def run() -> list[dict[str, object]]:
        backend = SimBackend(seed=5, images=80, clock=SimClock(manual=True))
        principal = Principal("ims-operator", backend.project_id, None, True)
        ids = [
            i["id"]
            for i in backend.images.values()
            if i["owner"] == backend.project_id
            and i["status"] == "active"
            and not i["__whole_image"]
            and i["virtual_env_type"] == "FusionCompute"
            and not i["__originalimagename"]
            and int(i["__image_size"]) < 128 * GiB
            and not i["__productcode"]
        ][:3]
        jobs = []
        for n, image_id in enumerate(ids):
            body = json.dumps({"bucket_url": f"ims-exports-cn-north-4:d/{n}.vhd", "file_format": "vhd"}).encode()
            jobs.append(backend.export_image(principal, image_id, body))
        backend.clock.advance(3600)
        return [backend.job_view(j, progress=True) for j in jobs]

    first = run()
    assert first and first == run()
