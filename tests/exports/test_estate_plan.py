"""Preflight and plans over an estate frame: each row judged in its own region, templates per region and project."""

from __future__ import annotations

import pandas as pd
import pytest

from ims_nb.client import ImsClient
from ims_nb.errors import ConfigError
from ims_nb.exports.plan import plan_exports
from ims_nb.preflight import preflight, preflight_summary
from ims_nb.rules import DEFAULT_PROFILE, STRICT
from ims_nb.vocab import GiB, Scope
from tests.exports.conftest import REGIONS

BUCKET_TEMPLATE = "ims-exports-{region}"
KEY_TEMPLATE = "estate/{project}/{name}-{id8}.{ext}"


def test_a_mixed_region_frame_is_judged_by_each_rows_own_region_profile(estate_images: pd.DataFrame) -> None:
    assert STRICT.normal_over_128 != DEFAULT_PROFILE.normal_over_128  # the profiles differ on big normal exports
    big = estate_images.iloc[[0, 0]].assign(region=["eu-west-0", "cn-north-4"], size_bytes=200 * GiB, size_gb=200.0)
    big = big.assign(id=[f"{big['id'].iloc[0][:-1]}{n}" for n in "ab"])
    found = preflight(big, bucket_url=f"{BUCKET_TEMPLATE}:{KEY_TEMPLATE}", file_format="qcow2")
    limit = found[found["rule"] == "fast-export-required"].set_index("image_id")["severity"]
    assert limit.to_dict() == {big["id"].iloc[0]: "error", big["id"].iloc[1]: "warning"}
    summary = preflight_summary(big, bucket_url=f"{BUCKET_TEMPLATE}:{KEY_TEMPLATE}", file_format="qcow2")
    assert summary["bucket_url"].str.startswith(("ims-exports-eu-west-0:", "ims-exports-cn-north-4:")).all()


def test_region_and_project_templates_are_rendered_per_row_and_each_bucket_checked_in_its_region(
    estate_images: pd.DataFrame, estate_clients: dict[Scope, ImsClient]
) -> None:
    plan = plan_exports(estate_images, bucket=BUCKET_TEMPLATE, key_template=KEY_TEMPLATE, client=estate_clients)
    assert len(plan) == len(estate_images) and set(plan["region"]) == set(REGIONS)
    assert (plan["bucket"] == "ims-exports-" + plan["region"]).all()
    projects = estate_images["project_name"].to_numpy()
    assert [key.split("/")[1] for key in plan["object_key"]] == list(projects)
    assert "cn-north-4_dev" in set(projects)
    assert list(plan["project_id"]) == list(estate_images["project_id"])
    bucket_rules = {"bucket-not-found", "bucket-region-mismatch", "bucket-not-standard"}
    assert not any(bucket_rules & set(rules) for rules in plan["blocking"])
    assert plan.groupby("region")["exportable"].any().all()  # every region has images to export


def test_a_bucket_of_another_region_is_refused_for_a_row(
    estate_images: pd.DataFrame, estate_clients: dict[Scope, ImsClient]
) -> None:
    mapping = dict.fromkeys(REGIONS, "ims-exports-ap-southeast-1")
    plan = plan_exports(estate_images, bucket=mapping, key_template=KEY_TEMPLATE, client=estate_clients)
    assert (plan["bucket"] == "ims-exports-ap-southeast-1").all()
    elsewhere = plan[plan["region"] != "ap-southeast-1"]
    home = plan[plan["region"] == "ap-southeast-1"]
    assert all({"bucket-region-mismatch", "bucket-not-found"} & set(rules) for rules in elsewhere["blocking"])
    assert not any("bucket-region-mismatch" in rules or "bucket-not-found" in rules for rules in home["blocking"])


def test_a_region_to_bucket_mapping_is_rendered_per_row_and_must_name_every_region(
    estate_images: pd.DataFrame,
) -> None:
    mapping = {region: f"backup-{n}" for n, region in enumerate(REGIONS)}
    plan = plan_exports(estate_images, bucket=mapping, key_template="{region}/{id}.{ext}")
    assert (plan["bucket"] == plan["region"].map(mapping)).all()
    assert (plan["object_key"].str.split("/").str[0] == plan["region"]).all()
    with pytest.raises(ConfigError, match="no bucket for region.*ap-southeast-3"):
        plan_exports(estate_images, bucket={r: "b" for r in REGIONS[:2]})


def test_a_single_region_frame_takes_the_clients_region_and_an_unknown_field_stays_an_error(
    estate_clients: dict[Scope, ImsClient],
) -> None:
    client = next(c for (region, _), c in estate_clients.items() if region == "ap-southeast-3")
    images = client.images(imagetype="private")
    plan = plan_exports(images, bucket=BUCKET_TEMPLATE, key_template="{region}/{project}/{id}.{ext}", client=client)
    assert (plan["bucket"] == "ims-exports-ap-southeast-3").all()
    assert plan["object_key"].str.startswith("ap-southeast-3/ap-southeast-3/").all()  # the main project: the region
    with pytest.raises(ConfigError, match="regoin"):
        plan_exports(images, bucket="b", key_template="{regoin}/{id}.{ext}", client=client)


def test_a_row_whose_scope_has_no_client_is_an_error_naming_it(
    estate_images: pd.DataFrame, estate_clients: dict[Scope, ImsClient]
) -> None:
    partial = {scope: c for scope, c in estate_clients.items() if scope[0] != "ap-southeast-1"}
    with pytest.raises(ConfigError, match="no client for region ap-southeast-1, project [0-9a-f]+"):
        plan_exports(estate_images, bucket=BUCKET_TEMPLATE, key_template=KEY_TEMPLATE, client=partial)
