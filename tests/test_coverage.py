"""``ims_nb.coverage`` on the simulator's manual clock: every status reached for real, keys matched to images by the
template inverted or by the id in them, and the gap planned, launched and watched until every image is covered."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pandas as pd
import pytest

import ims_nb
from ims_nb.client import ImsClient
from ims_nb.coverage import COVERAGE_COLUMNS, key_pattern, match_keys, uncovered
from ims_nb.exports.launch import launch
from ims_nb.exports.ledger import Ledger
from ims_nb.rules import SIMULATOR_PROFILE
from ims_nb.sim import Simulator
from ims_nb.sim.clock import SIM_EPOCH
from ims_nb.vocab import Coverage
from tests.exports.test_watch import first_failing_sequences
from tests.helpers import BUCKET, SimTime, exportable_plan

TEMPLATE = "exports/{id8}.{ext}"
COARSE: dict[str, Any] = {"interval": 300.0, "max_interval": 1800.0, "max_rate": 1000.0}


@pytest.fixture()
def world(fresh_sim: Simulator) -> Iterator[Simulator]:
    """The reset simulator, reset again afterwards (these tests change images and objects)."""
    yield fresh_sim
    httpx.post(f"{fresh_sim.endpoint}/_sim/reset", json={"seed": 0, "images": 200}).raise_for_status()


@pytest.fixture()
def plan(world: Simulator, client: ImsClient) -> pd.DataFrame:
    """Exportable rows of images last updated before the simulated clock starts (no export of them is stale)."""
    rows = exportable_plan(client, key_template=TEMPLATE)
    updated = client.images(imagetype="private").set_index("id")["updated_at"]
    return rows[rows["image_id"].map(updated) < pd.Timestamp(SIM_EPOCH)].reset_index(drop=True)


def run_watch(ledger: Ledger, client: ImsClient, sim_time: SimTime) -> None:
    ims_nb.watch(ledger, client=client, clock=sim_time, sleep=sim_time.sleep, **COARSE)


def judge(client: ImsClient, ledger: Ledger, **options: Any) -> pd.DataFrame:
    return ims_nb.coverage(client.images(imagetype="private"), ledger, client, key_template=TEMPLATE,
                           profile=SIMULATOR_PROFILE, **options)  # fmt: skip


def status_of(frame: pd.DataFrame) -> dict[str, str]:
    return dict(zip(frame["id"], frame["status"], strict=True))


def test_every_status_is_reached_for_real(
    world: Simulator, plan: pd.DataFrame, client: ImsClient, ledger: Ledger, obs: httpx.Client, sim_time: SimTime
) -> None:
    failing = first_failing_sequences(0, len(plan))[0]  # seed 0: job number 17 fails part-way
    assert failing >= 4
    launch(plan.head(failing), client=client, ledger=ledger, concurrency=1, max_rate=1000)  # sequence = row order
    run_watch(ledger, client, sim_time)
    ids = plan["image_id"].tolist()
    covered, stale, lost, failed = ids[0], ids[1], ids[2], ids[failing - 1]
    live, outside, by_id8, never = ids[failing], ids[failing + 1], ids[failing + 2], ids[failing + 3]
    launch(plan.iloc[[failing]], client=client, ledger=ledger, max_rate=1000)  # still running: the clock stands
    obs.delete(f"/{BUCKET}/{plan.at[2, 'object_key']}").raise_for_status()  # its object is gone
    world.backend.image(stale)["updated_at"] = "2027-01-01T00:00:00Z"  # updated after its export
    obs.put(f"/{BUCKET}/console/{outside}.qcow2", content=b"made with the console").raise_for_status()
    obs.put(f"/{BUCKET}/exports/{by_id8[:8]}.vhd", content=b"made with another tool").raise_for_status()

    frame = judge(client, ledger)

    statuses = status_of(frame)
    assert statuses[covered] == Coverage.COVERED
    assert statuses[stale] == Coverage.STALE
    assert statuses[lost] == statuses[failed] == Coverage.FAILED
    assert statuses[live] == Coverage.IN_PROGRESS
    assert statuses[outside] == statuses[by_id8] == Coverage.OUTSIDE
    assert statuses[never] == Coverage.NEVER
    refused = frame[frame["status"] == Coverage.NOT_EXPORTABLE]
    assert len(refused) and refused["blocking"].map(len).gt(0).all()
    row = frame.set_index("id").loc[covered]
    assert (row["target"], row["file_format"]) == (f"{BUCKET}:{plan.at[0, 'object_key']}", "qcow2")
    assert row["last_export_at"] >= pd.Timestamp(SIM_EPOCH)
    assert frame.set_index("id").at[by_id8, "file_format"] == "vhd"
    assert "gone" in frame.set_index("id").at[lost, "note"]
    assert list(frame.columns) == ["id", "name", *COVERAGE_COLUMNS]
    rank = frame["status"].map({s: n for n, s in enumerate(["never", "failed", "stale", "in-progress"])}).fillna(9)
    assert rank.iloc[: len(uncovered(frame))].max() < 9  # the uncovered come first
    summary = ims_nb.coverage_summary(frame)
    assert summary["status"].tolist() == [s.value for s in Coverage]
    assert summary["images"].sum() == len(frame)
    assert summary["size_bytes"].sum() == frame["size_bytes"].sum()


def test_the_buckets_listed_are_one_listing_each(
    world: Simulator, client: ImsClient, ledger: Ledger, sent: Any
) -> None:
    sent.clear()
    judge(client, ledger, buckets=[BUCKET, "ims-exports-scratch"])
    listed = sorted(r.url.path for r in sent.requests if r.method == "GET" and r.url.path.startswith("/ims-"))
    assert listed == [f"/{BUCKET}", "/ims-exports-scratch"]


def test_an_estate_frame_keeps_its_columns(world: Simulator, client: ImsClient, ledger: Ledger) -> None:
    images = client.images(imagetype="private").assign(region="cn-north-4", project_id="p1", project_name="cn-north-4")
    frame = ims_nb.coverage(images, ledger, client, profile=SIMULATOR_PROFILE)
    assert list(frame.columns[:5]) == ["id", "name", "region", "project_id", "project_name"]
    summary = ims_nb.coverage_summary(frame)
    assert list(summary.columns) == ["region", "status", "images", "size_bytes"]


IMAGES = pd.DataFrame({
    "id": ["1f34a6d9-115b-44b2-9c58-2736820a464a", "1f34a6d9-ffff-44b2-9c58-2736820a4640",
           "7c0ffee0-115b-44b2-9c58-2736820a464a"],
    "name": ["web server", "db", "cache"], "platform": ["Ubuntu", "CentOS", "Debian"],
})  # fmt: skip


def test_the_key_template_is_inverted() -> None:
    pattern = key_pattern("backups/{name}-{id8}.{ext}")
    assert pattern.fullmatch("backups/web-server-1f34a6d9.qcow2").groupdict() == {  # type: ignore[union-attr]
        "name": "web-server", "id8": "1f34a6d9", "ext": "qcow2"}  # fmt: skip
    assert key_pattern("{id}/{id}.{ext}").fullmatch("a-b/a-c.vhd") is None  # a repeated field must agree
    keys = pd.Series(
        [
            "backups/web-server-1f34a6d9.qcow2",
            "backups/db-1f34a6d9.vhd",
            "backups/x-1f34a6d9.vhd",
            "elsewhere/7c0ffee0-115b-44b2-9c58-2736820a464a.img",
            "old/cache_7c0ffee0.qcow2",
            "README",
        ]
    )
    found = match_keys(keys, IMAGES, "backups/{name}-{id8}.{ext}")
    assert found.tolist()[:2] == [IMAGES.at[0, "id"], IMAGES.at[1, "id"]]  # {id8} is shared: {name} decides
    assert found.isna().tolist() == [False, False, True, False, False, True]
    assert found.iloc[3] == found.iloc[4] == IMAGES.at[2, "id"]  # the full id, or a unique {id8}, in the key
    assert match_keys(keys, IMAGES, "{id}.{ext}").isna().tolist() == [True, True, True, False, True, True]


def test_the_gap_is_one_plan_and_after_it_every_exportable_image_is_covered(
    world: Simulator, plan: pd.DataFrame, client: ImsClient, ledger: Ledger, obs: httpx.Client, sim_time: SimTime
) -> None:
    chosen = plan["image_id"].head(6).tolist()  # fewer jobs than the first that fails (seed 0: job 17)
    launch(plan.head(1), client=client, ledger=ledger, max_rate=1000)
    run_watch(ledger, client, sim_time)
    obs.delete(f"/{BUCKET}/{plan.at[0, 'object_key']}").raise_for_status()  # verified, then gone
    inventory = client.images(imagetype="private")
    images = pd.concat([inventory[inventory["id"].isin(chosen)], inventory[inventory["image_type"] != "private"],
                        inventory[inventory["whole_image"].fillna(False).astype(bool)].head(2)])  # fmt: skip
    before = ims_nb.coverage(images, ledger, client, key_template=TEMPLATE, profile=SIMULATOR_PROFILE)
    assert set(uncovered(before)["id"]) == set(chosen)

    gap = ims_nb.coverage_gap_plan(before, images, bucket_url=f"{BUCKET}:{TEMPLATE}", client=client,
                                   profile=SIMULATOR_PROFILE)  # fmt: skip
    assert sorted(gap["image_id"]) == sorted(chosen) and gap["exportable"].all()
    report = ims_nb.launch_gap(gap, client=client, ledger=ledger, max_rate=1000)
    assert (report["action"] == "launched").all() and len(report) == len(chosen)
    run_watch(ledger, client, sim_time)

    after = ims_nb.coverage(images, ledger, client, key_template=TEMPLATE, profile=SIMULATOR_PROFILE)
    assert uncovered(after).empty
    assert set(after.loc[after["status"] == Coverage.COVERED, "id"]) == set(chosen)
    assert (after.loc[~after["id"].isin(chosen), "status"] == Coverage.NOT_EXPORTABLE).all()
