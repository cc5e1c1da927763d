"""Coverage over an estate: a ``{region}`` batch exported once per image to its own region's Standard bucket is
``covered``; an object put through the official OBS client is ``covered (outside the ledger)``; the gap is closed."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest
from obs import ObsClient

import ims_nb
from ims_nb.client import ImsClient
from ims_nb.coverage import uncovered
from ims_nb.exports.ledger import Ledger
from ims_nb.rules import SIMULATOR_PROFILE
from ims_nb.sim import Simulator
from ims_nb.sim.clock import SIM_EPOCH
from ims_nb.vocab import Coverage, Scope
from tests.exports.conftest import REGIONS, EstateClock, region_jobs

BUCKET = "ims-exports-{region}"
TEMPLATE = "cover/{project}/{name}-{id8}.{ext}"
WATCH = {"interval": 300.0, "max_interval": 1800.0, "max_rate": 1000.0, "timeout": 7 * 24 * 3600.0}
PER_SCOPE = 3


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ledger]:
    with Ledger(tmp_path_factory.mktemp("estate-coverage") / "ledger.sqlite") as opened:
        yield opened


@pytest.fixture(scope="module")
def images(estate_images: pd.DataFrame, estate_clients: dict[Scope, ImsClient]) -> pd.DataFrame:
    """A few exportable images per scope, last updated before the simulated clock starts, and the rest."""
    plan = ims_nb.plan_exports(estate_images, bucket=BUCKET, key_template=TEMPLATE, client=estate_clients,
                               profile=SIMULATOR_PROFILE)  # fmt: skip
    ok = plan["exportable"].fillna(False).astype(bool).to_numpy() & (estate_images["updated_at"] < SIM_EPOCH)
    chosen = estate_images[ok].groupby(["region", "project_id"]).head(PER_SCOPE + 1)
    return chosen.reset_index(drop=True)


@pytest.fixture(scope="module")
def batch(
    estate_sim: Simulator, images: pd.DataFrame, estate_clients: dict[Scope, ImsClient], ledger: Ledger
) -> pd.DataFrame:
    """The first ``PER_SCOPE`` images of each scope exported and watched to the end; the last one left out."""
    first = images.groupby(["region", "project_id"]).head(PER_SCOPE)
    plan = ims_nb.plan_exports(first, bucket=BUCKET, key_template=TEMPLATE, client=estate_clients,
                               profile=SIMULATOR_PROFILE)  # fmt: skip
    ims_nb.launch(plan, client=estate_clients, ledger=ledger, max_rate=1000.0)
    clock = EstateClock(estate_sim)
    ims_nb.watch(ledger, client=estate_clients, clock=clock, sleep=clock.sleep, **WATCH)
    return plan


def judge(images: pd.DataFrame, ledger: Ledger, clients: dict[Scope, ImsClient], **options: Any) -> pd.DataFrame:
    return ims_nb.coverage(images, ledger, clients, buckets=BUCKET, key_template=TEMPLATE, profile=SIMULATOR_PROFILE,
                           **options)  # fmt: skip


def test_an_estate_batch_exports_once_per_image_to_its_own_region_and_is_covered(
    estate_sim: Simulator, images: pd.DataFrame, batch: pd.DataFrame, ledger: Ledger,
    estate_clients: dict[Scope, ImsClient],
) -> None:  # fmt: skip
    assert set(batch["region"]) == set(REGIONS) and batch["exportable"].all()
    for region in REGIONS:
        jobs = [j for j in region_jobs(estate_sim, region) if "cover/" in j["bucket_url"]]
        assert all(j["bucket_url"].startswith(f"ims-exports-{region}:cover/") for j in jobs)
        per_image = Counter(j["entities"]["image_id"] for j in jobs)
        assert set(per_image) == set(batch.loc[batch["region"] == region, "image_id"]) and set(per_image.values()) == {
            1
        }

    frame = judge(images, ledger, estate_clients)
    status = dict(zip(frame["id"], frame["status"], strict=True))
    assert {status[i] for i in batch["image_id"]} == {Coverage.COVERED}
    left = set(images["id"]) - set(batch["image_id"])
    assert {status[i] for i in left} == {Coverage.NEVER} and len(left) == len(estate_clients)
    assert list(frame.columns[:5]) == ["id", "name", "region", "project_id", "project_name"]
    covered = frame[frame["status"] == Coverage.COVERED]
    assert (covered["target"].str.split(":").str[0] == "ims-exports-" + covered["region"]).all()


def test_each_bucket_is_listed_once_through_its_regions_client(
    images: pd.DataFrame, batch: pd.DataFrame, ledger: Ledger, estate_clients: dict[Scope, ImsClient],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    listed: list[tuple[str | None, str]] = []
    original = ImsClient.objects

    def spy(self: ImsClient, bucket: str, **options: Any) -> pd.DataFrame:
        listed.append((self.region, bucket))
        return original(self, bucket, **options)

    monkeypatch.setattr(ImsClient, "objects", spy)
    judge(images, ledger, estate_clients)
    assert sorted(listed) == sorted((r, f"ims-exports-{r}") for r in REGIONS)  # the sub-project's bucket too, once


def test_an_object_put_through_obs_is_covered_outside_the_ledger(
    estate_sim: Simulator, images: pd.DataFrame, batch: pd.DataFrame, ledger: Ledger,
    estate_clients: dict[Scope, ImsClient],
) -> None:  # fmt: skip
    info = estate_sim.info
    assert info.regions is not None
    left = images[~images["id"].isin(batch["image_id"])]
    row = left[left["region"] == REGIONS[1]].iloc[0]
    sdk = ObsClient(access_key_id=info.ak, secret_access_key=info.sk, server=info.regions[REGIONS[1]]["endpoint"],
                    max_retry_count=0, timeout=10)  # fmt: skip
    try:
        put = sdk.putContent(f"ims-exports-{REGIONS[1]}", f"console/{row['id']}.qcow2", content=b"made elsewhere\n")
        assert put.status == 200, put.errorCode
    finally:
        sdk.close()
    frame = judge(images, ledger, estate_clients).set_index("id")
    assert frame.at[row["id"], "status"] == Coverage.OUTSIDE
    assert frame.at[row["id"], "target"] == f"ims-exports-{REGIONS[1]}:console/{row['id']}.qcow2"
    assert set(frame.loc[list(batch["image_id"]), "status"]) == {Coverage.COVERED}


def test_the_gap_of_an_estate_is_one_plan_and_is_closed(
    estate_sim: Simulator, images: pd.DataFrame, batch: pd.DataFrame, ledger: Ledger,
    estate_clients: dict[Scope, ImsClient],
) -> None:  # fmt: skip
    frame = judge(images, ledger, estate_clients)
    gap = ims_nb.coverage_gap_plan(frame, images, bucket_url=f"{BUCKET}:{TEMPLATE}", client=estate_clients,
                                   profile=SIMULATOR_PROFILE)  # fmt: skip
    assert set(gap["image_id"]) == set(uncovered(frame)["id"]) and gap["exportable"].all()
    report = ims_nb.launch_gap(gap, client=estate_clients, ledger=ledger, max_rate=1000.0)
    assert set(report["action"]) == {"launched"} and len(report) == len(gap)
    clock = EstateClock(estate_sim)
    ims_nb.watch(ledger, client=estate_clients, clock=clock, sleep=clock.sleep, **WATCH)
    after = judge(images, ledger, estate_clients)
    assert not len(uncovered(after)) and set(after["status"]) <= {Coverage.COVERED, Coverage.OUTSIDE}


def test_an_estate_frame_without_its_scope_columns_is_refused(
    images: pd.DataFrame, ledger: Ledger, estate_clients: dict[Scope, ImsClient]
) -> None:
    with pytest.raises(ims_nb.ConfigError, match="project_id"):
        judge(images.drop(columns="project_id"), ledger, estate_clients)
