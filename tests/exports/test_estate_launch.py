"""An estate batch: each row launched at its own region, recorded with its scope, watched and reconciled there."""

from __future__ import annotations

import socket
import sqlite3
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from ims_nb.client import ImsClient
from ims_nb.exports.identity import scoped
from ims_nb.exports.launch import launch
from ims_nb.exports.ledger import Ledger
from ims_nb.exports.plan import plan_exports
from ims_nb.exports.schema import SCHEMA_VERSION
from ims_nb.exports.watch import watch
from ims_nb.rules import SIMULATOR_PROFILE
from ims_nb.vocab import LIVE, Scope, State, Target
from tests.exports.conftest import REGIONS, EstateClock, region_jobs
from tests.exports.old_schema import SCHEMA_V0, upgrade_to

BUCKET = "ims-exports-{region}"
WATCH = {"interval": 300.0, "max_interval": 1800.0, "max_rate": 1000.0, "timeout": 7 * 24 * 3600.0}


def _plan(images: pd.DataFrame, clients: dict[Scope, ImsClient], prefix: str) -> pd.DataFrame:
    template = prefix + "/{project}/{name}-{id8}.{ext}"
    return plan_exports(images, bucket=BUCKET, key_template=template, client=clients, profile=SIMULATOR_PROFILE)


def _wanted(plan: pd.DataFrame) -> dict[str, set[str]]:
    exportable = plan[plan["exportable"].fillna(False).astype(bool)]
    return {region: set(exportable.loc[exportable["region"] == region, "image_id"]) for region in REGIONS}


def _jobs_per_image(estate_sim: Any, region: str, prefix: str) -> Counter[str]:
    jobs = [j for j in region_jobs(estate_sim, region) if j["bucket_url"].startswith(f"ims-exports-{region}:{prefix}/")]
    return Counter(j["entities"]["image_id"] for j in jobs)


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ledger]:
    with Ledger(tmp_path_factory.mktemp("estate") / "ledger.sqlite") as opened:
        yield opened


@pytest.fixture(scope="module")
def launched(
    estate_images: pd.DataFrame, estate_clients: dict[Scope, ImsClient], ledger: Ledger
) -> tuple[pd.DataFrame, pd.DataFrame]:
    plan = _plan(estate_images, estate_clients, "batch")
    return plan, launch(plan, client=estate_clients, ledger=ledger, max_rate=1000.0)


def test_an_estate_batch_exports_each_image_once_to_its_own_regions_standard_bucket(
    estate_sim: Any, launched: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    plan, rows = launched
    wanted = _wanted(plan)
    assert all(wanted.values()) and len(rows) == sum(map(len, wanted.values()))
    for region in REGIONS:
        per_image = _jobs_per_image(estate_sim, region, "batch")
        assert set(per_image) == wanted[region] and set(per_image.values()) == {1}, region
        others = [
            j for j in region_jobs(estate_sim, region) if not j["bucket_url"].startswith(f"ims-exports-{region}:")
        ]
        assert not others  # nothing went to another region's bucket


def test_the_ledger_rows_carry_each_rows_region_and_project(
    launched: tuple[pd.DataFrame, pd.DataFrame], ledger: Ledger
) -> None:
    plan, _ = launched
    expected = {(r["image_id"], r["bucket_url"]): (r["region"], r["project_id"]) for r in plan.to_dict("records")}
    rows = ledger.rows()
    assert rows and all((r["region"], r["project_id"]) == expected[r["image_id"], r["bucket_url"]] for r in rows)
    assert {r["region"] for r in rows} == set(REGIONS) and len({r["project_id"] for r in rows}) == 4


@pytest.fixture(scope="module")
def watched(
    estate_sim: Any, launched: tuple[pd.DataFrame, pd.DataFrame], estate_clients: dict[Scope, ImsClient],
    ledger: Ledger,
) -> pd.DataFrame:  # fmt: skip
    clock = EstateClock(estate_sim)
    return watch(ledger, client=estate_clients, clock=clock, sleep=clock.sleep, **WATCH)


def test_a_watch_follows_every_region_to_success(watched: pd.DataFrame, ledger: Ledger) -> None:
    assert not ledger.rows(LIVE)
    assert len(watched) == len(ledger.rows())
    states = Counter(r["state"] for r in ledger.rows())
    assert states[State.VERIFIED] >= 0.8 * len(ledger.rows()) and not states[State.MISSING]
    assert set(states) <= {State.VERIFIED, State.FAILED}


def _dead_owner() -> str:
    process = subprocess.Popen(["true"])  # noqa: S607 - a process that is gone by the time its id is read
    process.wait()
    return f"{socket.gethostname()}:{process.pid}"


def test_a_crash_mid_batch_is_reconciled_per_region_without_a_duplicate(
    estate_sim: Any, estate_images: pd.DataFrame, estate_clients: dict[Scope, ImsClient], ledger: Ledger,
    watched: pd.DataFrame,
) -> None:  # fmt: skip
    plan = _plan(estate_images, estate_clients, "crash")
    exportable = plan[plan["exportable"].fillna(False).astype(bool)]
    owner = _dead_owner()
    for (region, project_id), rows in exportable.groupby(["region", "project_id"]):
        client = estate_clients[region, project_id]
        for n, row in enumerate(rows.head(2).to_dict("records")):  # cut off mid-POST: one sent, one not
            target = Target(row["bucket"], row["object_key"])
            row_id = scoped(ledger, client).claim(image_id=row["image_id"], target=target, image_name=row["name"],
                                                  file_format=row["file_format"], quick=bool(row["quick"]),
                                                  size_bytes=None, region=region, project_id=project_id)  # fmt: skip
            assert row_id is not None
            ledger.update(row_id, owner=owner)
            if n == 0:
                client.export_image(row["image_id"], target, row["file_format"], quick=bool(row["quick"]))
    launch(plan, client=estate_clients, ledger=ledger, max_rate=1000.0)
    clock = EstateClock(estate_sim)
    watch(ledger, client=estate_clients, clock=clock, sleep=clock.sleep, **WATCH)
    wanted = _wanted(plan)
    for region in REGIONS:
        per_image = _jobs_per_image(estate_sim, region, "crash")
        assert set(per_image) == wanted[region] and set(per_image.values()) == {1}, region
    crash_rows = [r for r in ledger.rows() if r["object_key"].startswith("crash/")]
    assert Counter(r["image_id"] for r in crash_rows) == Counter(exportable["image_id"])
    assert not ledger.rows(LIVE)


def test_old_ledgers_gain_each_rows_scope_and_keep_every_row(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:
        db.executescript(SCHEMA_V0)
        for n, (region, key) in enumerate([("cn-north-4", "a"), (None, "b"), (None, "c"), (None, "d")], start=1):
            db.execute("INSERT INTO exports (image_id, bucket_url, quick, region, state, created_at, updated_at) "
                       "VALUES (?, ?, 0, ?, 'verified', 0, 0)", (f"img-{n}", f"bkt:{key}.qcow2", region))  # fmt: skip
    upgrade_to(path, 2)  # a file of schema version 2: identities, no scope yet
    with sqlite3.connect(path) as db:
        sim, public = "http://127.0.0.1:5000", "https://ims.ap-southeast-3.myhuaweicloud.com"
        for row_id, endpoint in ((1, sim), (2, sim), (3, public)):
            db.execute("UPDATE exports SET endpoint = ?, project_id = ? WHERE row_id = ?", (endpoint, "p1", row_id))
    with Ledger(path) as opened:
        rows = {r["row_id"]: r for r in opened.rows()}
        version = opened.schema_version()
    assert version == SCHEMA_VERSION == 4 and sorted(rows) == [1, 2, 3, 4]
    assert [(rows[i]["region"], rows[i]["project_id"]) for i in (1, 2, 3, 4)] == [
        ("cn-north-4", "p1"), ("cn-north-4", "p1"), ("ap-southeast-3", "p1"), (None, None)]  # fmt: skip
    assert [rows[i]["bucket_url"] for i in (1, 2, 3, 4)] == [f"bkt:{k}.qcow2" for k in "abcd"]
