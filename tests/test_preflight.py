"""``preflight`` and ``preflight_summary`` through the real client into the simulator: inputs, lookups, summary."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pandas as pd
import pytest

from ims_nb import BucketInfo, ImsClient
from ims_nb.errors import ConfigError
from ims_nb.frames import IMAGE_COLUMNS, images_frame
from ims_nb.preflight import SUMMARY_COLUMNS, VIOLATION_COLUMNS, preflight, preflight_summary
from ims_nb.rules import DEFAULT_PROFILE, SIMULATOR_PROFILE, STRICT

pytestmark = pytest.mark.usefixtures("clean_env")

GiB = 1024**3
REGION_BUCKET = "ims-exports-cn-north-4"
TEMPLATE = f"{REGION_BUCKET}:preflight/{{id8}}.{{ext}}"


@pytest.fixture()
def client(sim_client: ImsClient, sent: Any) -> ImsClient:
    """The recording client of the reset simulator (it has sent nothing yet)."""
    assert len(sent) == 0
    return sim_client


@pytest.fixture()
def frame(client: ImsClient, sent: Any) -> pd.DataFrame:
    images = client.images()
    sent.clear()
    return images


def sorted_rows(violations: pd.DataFrame) -> pd.DataFrame:
    return violations.sort_values(["image_id", "rule"]).reset_index(drop=True)


def object_heads(sent: Any, bucket: str = REGION_BUCKET) -> list[httpx.Request]:
    return sent.matching("HEAD", f"^/{bucket}/.+")  # type: ignore[no-any-return]


def bucket_heads(sent: Any, bucket: str = REGION_BUCKET) -> list[httpx.Request]:
    return sent.matching("HEAD", f"^/{bucket}$")  # type: ignore[no-any-return]


# --- inputs: a frame, raw records, ids --------------------------------------------------------------


def test_a_frame_raw_records_and_ids_give_the_same_answer(client: ImsClient, frame: pd.DataFrame, sent: Any) -> None:
    records = list(client.iter_images())
    by_frame = preflight(frame, bucket_url=TEMPLATE, file_format="qcow2", client=client)
    by_records = preflight(records, bucket_url=TEMPLATE, file_format="qcow2", client=client)
    sent.clear()
    by_ids = preflight(list(frame["id"]), bucket_url=TEMPLATE, file_format="qcow2", client=client)
    assert len(sent.matching("GET", r"^/v2/images/[^/]+$")) == len(frame)
    assert not by_frame.empty
    pd.testing.assert_frame_equal(sorted_rows(by_frame), sorted_rows(by_records))
    pd.testing.assert_frame_equal(sorted_rows(by_frame), sorted_rows(by_ids))


def test_one_record_and_one_id(client: ImsClient, frame: pd.DataFrame) -> None:
    image_id = frame["id"].iloc[0]
    record = client.image(image_id)
    assert preflight(record, bucket_url=TEMPLATE, file_format="qcow2").equals(
        preflight([record], bucket_url=TEMPLATE, file_format="qcow2")
    )
    assert set(preflight(image_id, bucket_url=TEMPLATE, file_format="qcow2", client=client)["image_id"]) <= {image_id}


def test_ids_without_a_client_are_a_config_error() -> None:
    with pytest.raises(ConfigError, match="client"):
        preflight(["4f6d1a2e-0000-4000-8000-000000000000"], bucket_url=TEMPLATE, file_format="qcow2")
    with pytest.raises(ConfigError, match="client"):
        preflight_summary("4f6d1a2e-0000-4000-8000-000000000000", bucket_url=TEMPLATE, file_format="qcow2")


@pytest.mark.parametrize(
    "images",
    [42, None, [{"id": "x"}, "an-id"], [1, 2], pd.DataFrame({"id": ["x"], "name": ["y"]}), [None]],
    ids=["int", "none", "mixed", "ints", "frame-without-columns", "list-of-none"],
)
def test_malformed_images_are_a_config_error(images: Any) -> None:
    with pytest.raises(ConfigError):
        preflight(images, bucket_url=TEMPLATE, file_format="qcow2")


def test_a_frame_of_the_wrong_types_is_a_config_error(frame: pd.DataFrame) -> None:
    broken = frame.astype({"size_bytes": object})
    broken.loc[0, "size_bytes"] = "big"
    with pytest.raises(ConfigError, match="wrong type"):
        preflight(broken, bucket_url=TEMPLATE, file_format="qcow2")


@pytest.mark.parametrize(
    "arguments",
    [{"bucket_url": 5}, {"file_format": 3}, {"quick": "yes"}, {"quick": None}, {"region": 7}, {"profile": "strict"}],
)
def test_malformed_arguments_are_a_config_error(arguments: dict[str, Any]) -> None:
    arguments = {"bucket_url": TEMPLATE, "file_format": "qcow2", **arguments}
    with pytest.raises(ConfigError):
        preflight([], **arguments)


def test_a_frame_with_a_filtered_index(frame: pd.DataFrame) -> None:
    """A filtered frame keeps its index; preflight does not depend on a RangeIndex."""
    subset = frame[frame["status"] != "active"]
    assert list(subset.index) != list(range(len(subset)))
    violations = preflight(subset, bucket_url=TEMPLATE, file_format="qcow2")
    assert set(violations.loc[violations["rule"] == "image-not-active", "image_id"]) == set(subset["id"])
    summary = preflight_summary(subset, bucket_url=TEMPLATE, file_format="qcow2")
    assert list(summary["image_id"]) == list(subset["id"]) and not summary["exportable"].any()


# --- lookups ------------------------------------------------------------------------------------------


def test_one_bucket_lookup_per_bucket_and_one_object_lookup_per_target(
    client: ImsClient, frame: pd.DataFrame, sent: Any
) -> None:
    preflight(frame, bucket_url=TEMPLATE, file_format="qcow2", client=client)
    assert len(bucket_heads(sent)) == 1
    assert len(object_heads(sent)) == len(frame) == 200
    assert {r.method for r in sent.requests} == {"HEAD"}  # nothing else: no exports running, project known
    sent.clear()
    preflight(frame, bucket_url=f"{REGION_BUCKET}:preflight/one-file.qcow2", file_format="qcow2", client=client)
    assert len(bucket_heads(sent)) == 0  # the client remembers the bucket
    assert len(object_heads(sent)) == 1  # every image targets the same object


def test_no_object_lookup_for_an_invalid_url_or_a_missing_bucket(
    client: ImsClient, frame: pd.DataFrame, sent: Any
) -> None:
    preflight(frame, bucket_url="Bad_Bucket:x/{id8}.{ext}", file_format="qcow2", client=client)
    assert len(sent) == 0
    preflight(frame, bucket_url="ims-no-such-bucket:x/{id8}.{ext}", file_format="qcow2", client=client)
    assert [r.url.path for r in sent.requests] == ["/ims-no-such-bucket"]


def test_object_lookups_skip_rows_whose_key_is_invalid(client: ImsClient, frame: pd.DataFrame, sent: Any) -> None:
    preflight(frame, bucket_url=f"{REGION_BUCKET}:x/{{name}} {{id8}}.{{ext}}", file_format="qcow2", client=client)
    assert len(bucket_heads(sent)) == 0 and len(object_heads(sent)) == 0


@pytest.mark.parametrize(
    ("bucket", "rule", "code", "named"),
    [
        ("ims-no-such-bucket", "bucket-not-found", "IMG.0069", "ims-no-such-bucket"),
        ("ims-exports-ap-southeast-1", "bucket-region-mismatch", "IMG.0058", "ap-southeast-1"),
        ("ims-archive-warm", "bucket-not-standard", "IMG.0069", "WARM"),
        ("ims-archive-cold", "bucket-not-standard", "IMG.0069", "COLD"),
        ("ims-archive-deep", "bucket-not-standard", "IMG.0069", "DEEP_ARCHIVE"),
    ],
)
def test_bucket_rules_on_the_simulator_buckets(
    client: ImsClient, frame: pd.DataFrame, bucket: str, rule: str, code: str, named: str
) -> None:
    violations = preflight(frame, bucket_url=f"{bucket}:x/{{id8}}.{{ext}}", file_format="qcow2", client=client)
    hits = violations[violations["rule"] == rule]
    assert set(hits["image_id"]) == set(frame["id"])  # the bucket is wrong for every image
    assert set(hits["code"]) == {code} and set(hits["severity"]) == {"error"}
    assert hits["message"].str.contains(named, regex=False).all() and hits["message"].str.contains(bucket).all()
    others = {"bucket-not-found", "bucket-region-mismatch", "bucket-not-standard"} - {rule}
    assert not violations["rule"].isin(others).any()


def test_the_good_buckets_raise_no_bucket_rule(client: ImsClient, frame: pd.DataFrame) -> None:
    for bucket in (REGION_BUCKET, "ims-exports-scratch"):
        violations = preflight(frame, bucket_url=f"{bucket}:x/{{id8}}.{{ext}}", file_format="qcow2", client=client)
        assert not violations["rule"].str.startswith("bucket-").any()
        assert not violations["rule"].str.startswith("object-").any()


def precreated_key(obs: httpx.Client) -> str:
    listing = obs.get(f"/{REGION_BUCKET}").text
    keys = re.findall(r"<Key>(exports/[^<]+\.qcow2)</Key>", listing)
    assert len(keys) == 1, listing
    return keys[0]


def test_object_exists_on_the_precreated_object(client: ImsClient, frame: pd.DataFrame, obs: httpx.Client) -> None:
    """The seeded world holds exports/<name of its first active private image>.qcow2 in the region's bucket."""
    key = precreated_key(obs)
    violations = preflight(frame, bucket_url=f"{REGION_BUCKET}:exports/{{name}}.{{ext}}", file_format="qcow2",
                           client=client)  # fmt: skip
    hits = violations[violations["rule"] == "object-exists"]
    assert len(hits) == 1
    row = hits.iloc[0]
    image = frame[frame["id"] == row["image_id"]].iloc[0]
    assert key == f"exports/{image['name']}.qcow2"
    assert image["visibility"] == "private" and image["status"] == "active"
    assert row["code"] == "IMG.0070" and row["severity"] == "error"
    assert key in row["message"] and REGION_BUCKET in row["message"]
    again = preflight(frame, bucket_url=f"{REGION_BUCKET}:exports/{{name}}.{{ext}}", file_format="vhd", client=client)
    assert "object-exists" not in set(again["rule"])  # .vhd: another object


def test_already_exporting_after_an_export_through_the_same_client(
    client: ImsClient, frame: pd.DataFrame, control: httpx.Client
) -> None:
    summary = preflight_summary(
        frame, bucket_url=TEMPLATE, file_format="qcow2", client=client, profile=SIMULATOR_PROFILE
    )
    image_id = summary.loc[summary["exportable"].astype(bool), "image_id"].iloc[0]
    job_id = client.export_image(image_id, f"{REGION_BUCKET}:preflight/first.qcow2", "qcow2")
    violations = preflight(frame, bucket_url=TEMPLATE, file_format="qcow2", client=client)
    hits = violations[violations["rule"] == "already-exporting"]
    assert list(hits["image_id"]) == [image_id]
    assert hits["code"].iloc[0] == "IMG.0148" and job_id in hits["message"].iloc[0]
    control.post("/clock", json={"advance": 10 * 86400}).raise_for_status()
    later = preflight(frame, bucket_url=TEMPLATE, file_format="qcow2", client=client)
    assert "already-exporting" not in set(later["rule"])


# --- the summary --------------------------------------------------------------------------------------


def summary_of(frame: pd.DataFrame, client: ImsClient | None = None, **arguments: Any) -> pd.DataFrame:
    arguments = {"bucket_url": TEMPLATE, "file_format": "qcow2", "profile": SIMULATOR_PROFILE, **arguments}
    return preflight_summary(frame, client=client, **arguments).set_index("image_id")


def pick(frame: pd.DataFrame, predicate: pd.Series) -> str:
    ids = frame.loc[predicate.fillna(False).astype(bool), "id"]
    assert len(ids), "the seeded inventory lacks this case"
    return str(ids.iloc[0])


def clean(frame: pd.DataFrame) -> pd.Series:
    return (
        (frame["image_type"] == "private")
        & (frame["status"] == "active")
        & ~frame["whole_image"]
        & (frame["virtual_env_type"] != "IsoImage")
        & frame["product_code"].isna()
        & ~(frame["source_image_id"].notna() & frame["platform"].isin(["Windows", "SUSE", "Red Hat", "Ubuntu",
                                                                         "Oracle Linux"]))
    )  # fmt: skip


def test_summary_of_a_small_clean_image(frame: pd.DataFrame) -> None:
    image = pick(frame, clean(frame) & ~frame["encrypted"] & (frame["size_bytes"] < 128 * GiB))
    row = summary_of(frame).loc[image]
    assert row["exportable"] is True or bool(row["exportable"])
    assert row["blocking"] == [] and row["recommended"] == "normal"


def test_summary_recommends_fast_over_128_gib_unencrypted(frame: pd.DataFrame) -> None:
    image = pick(frame, clean(frame) & ~frame["encrypted"] & (frame["size_bytes"] > 128 * GiB)
                 & (frame["size_bytes"] < 1024 * GiB))  # fmt: skip
    row = summary_of(frame).loc[image]
    assert not row["exportable"] and row["blocking"] == ["fast-export-required"] and row["recommended"] == "fast"
    fast = summary_of(frame, file_format=None, quick=True).loc[image]
    assert fast["exportable"] and fast["blocking"] == [] and fast["recommended"] == "fast"
    default = summary_of(frame, profile=DEFAULT_PROFILE, region="cn-north-4").loc[image]
    assert default["exportable"] and default["warnings"] == ["fast-export-required"]
    assert default["recommended"] == "fast"


def test_summary_recommends_nothing_for_an_encrypted_image_over_128_gib(frame: pd.DataFrame) -> None:
    image = pick(frame, clean(frame) & frame["encrypted"] & (frame["size_bytes"] > 128 * GiB))
    normal = summary_of(frame).loc[image]
    fast = summary_of(frame, file_format=None, quick=True).loc[image]
    assert normal["blocking"] == ["fast-export-required"] and fast["blocking"] == ["encrypted-fast-export"]
    assert pd.isna(normal["recommended"]) and pd.isna(fast["recommended"])


def test_summary_recommends_normal_for_a_small_encrypted_image(frame: pd.DataFrame) -> None:
    image = pick(frame, clean(frame) & frame["encrypted"] & (frame["size_bytes"] <= 128 * GiB))
    fast = summary_of(frame, file_format=None, quick=True).loc[image]
    assert fast["blocking"] == ["encrypted-fast-export"] and fast["recommended"] == "normal"


@pytest.mark.parametrize(
    ("case", "rule"),
    [
        (lambda f: f["image_type"] == "gold", "image-not-private"),
        (lambda f: f["status"] != "active", "image-not-active"),
        (lambda f: f["whole_image"], "full-ecs-image"),
        (lambda f: f["virtual_env_type"] == "IsoImage", "iso-image"),
        (lambda f: f["size_bytes"] >= 1024 * GiB, "size-limit"),
        (lambda f: (f["platform"] == "Windows") & f["source_image_id"].notna(), "restricted-os-origin"),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_summary_recommends_nothing_when_a_fatal_rule_blocks(
    frame: pd.DataFrame, case: Callable[[pd.DataFrame], pd.Series], rule: str
) -> None:
    image = pick(frame, case(frame))
    for arguments in ({}, {"file_format": None, "quick": True}):
        row = summary_of(frame, **arguments).loc[image]
        assert not row["exportable"] and rule in row["blocking"] and pd.isna(row["recommended"])


def test_summary_lists_warnings_apart(frame: pd.DataFrame) -> None:
    image = pick(frame, clean(frame) & (frame["size_bytes"] < 128 * GiB))
    row = summary_of(frame, bucket_url=f"{REGION_BUCKET}:x/{{id8}}.vhd").loc[image]
    assert row["exportable"] and row["blocking"] == [] and row["warnings"] == ["object-extension-mismatch"]


def test_summary_agrees_with_preflight(client: ImsClient, frame: pd.DataFrame) -> None:
    arguments = {"bucket_url": "ims-archive-warm:x/{id8}.{ext}", "file_format": "vmdk", "client": client}
    violations = preflight(frame, **arguments)
    summary = preflight_summary(frame, **arguments)
    errors = violations[violations["severity"] == "error"]
    assert set(summary.loc[~summary["exportable"].astype(bool), "image_id"]) == set(errors["image_id"])
    for image_id, blocking in zip(summary["image_id"], summary["blocking"], strict=True):
        assert sorted(blocking) == sorted(errors.loc[errors["image_id"] == image_id, "rule"])


# --- profile selection ----------------------------------------------------------------------------


@dataclass
class StubSettings:
    is_simulator: bool


@dataclass
class StubClient:
    """Just what preflight asks of a client."""

    is_simulator: bool
    region: str = "cn-north-4"
    project_id: str = "p"
    calls: list[str] = field(default_factory=list)

    @property
    def settings(self) -> StubSettings:
        return StubSettings(self.is_simulator)

    def bucket(self, name: str) -> BucketInfo:
        self.calls.append(f"bucket {name}")
        return BucketInfo(name, True, self.region, "STANDARD")

    def object_exists(self, bucket: str, key: str) -> bool:
        self.calls.append(f"object {bucket}/{key}")
        return False


UBUNTU = {"id": "u1", "name": "ubuntu-web", "status": "active", "__platform": "Ubuntu", "__imagetype": "private",
          "visibility": "private", "owner": "p", "__image_size": str(GiB), "__originalimagename": "parent"}  # fmt: skip


def ubuntu_severity(**arguments: Any) -> str:
    violations = preflight([UBUNTU], bucket_url="b-1:x.qcow2", file_format="qcow2", **arguments)
    return str(violations.loc[violations["rule"] == "restricted-os-origin", "severity"].iloc[0])


def test_the_profile_follows_the_region_the_simulator_and_the_argument() -> None:
    assert ubuntu_severity() == "warning"
    assert ubuntu_severity(region="eu-west-0") == "error"
    assert ubuntu_severity(client=StubClient(is_simulator=True)) == "error"
    assert ubuntu_severity(client=StubClient(is_simulator=False)) == "warning"
    assert ubuntu_severity(client=StubClient(is_simulator=False), profile=SIMULATOR_PROFILE) == "error"
    assert ubuntu_severity(region="eu-west-0", profile=DEFAULT_PROFILE) == "warning"
    assert ubuntu_severity(profile=STRICT) == "error"


def test_a_client_given_by_explicit_keys_gets_the_region_profile(frame: pd.DataFrame, client: ImsClient) -> None:
    """With AK/SK the client does not know it talks to the simulator: the default profile warns."""
    ubuntu = frame[(frame["platform"] == "Ubuntu") & frame["source_image_id"].notna()]
    by_default = preflight(ubuntu, bucket_url=TEMPLATE, file_format="qcow2", client=client)
    strict = preflight(ubuntu, bucket_url=TEMPLATE, file_format="qcow2", client=client, profile=SIMULATOR_PROFILE)
    rows = by_default[by_default["rule"] == "restricted-os-origin"]
    assert len(rows) == len(ubuntu) and set(rows["severity"]) == {"warning"}
    assert rows["message"].str.contains("unconfirmed in region cn-north-4").all()
    assert set(strict.loc[strict["rule"] == "restricted-os-origin", "severity"]) == {"error"}


def test_lookups_go_through_the_client_interface() -> None:
    stub = StubClient(is_simulator=False)
    preflight([UBUNTU, {**UBUNTU, "id": "u2"}], bucket_url="b-1:x/{id}.qcow2", file_format="qcow2", client=stub)
    assert stub.calls == ["bucket b-1", "object b-1/x/u1.qcow2", "object b-1/x/u2.qcow2"]


# --- output shape ---------------------------------------------------------------------------------


def test_output_columns_and_dtypes(client: ImsClient, frame: pd.DataFrame) -> None:
    violations = preflight(frame, bucket_url=TEMPLATE, file_format="qcow2", client=client)
    assert list(violations.columns) == list(VIOLATION_COLUMNS)
    assert list(violations.columns[:4]) == ["image_id", "rule", "severity", "message"]
    assert {str(violations[c].dtype) for c in VIOLATION_COLUMNS} == {"string"}
    assert isinstance(violations.index, pd.RangeIndex)
    summary = preflight_summary(frame, bucket_url=TEMPLATE, file_format="qcow2", client=client)
    assert list(summary.columns) == list(SUMMARY_COLUMNS) and len(summary) == len(frame)
    assert {c: str(summary[c].dtype) for c in SUMMARY_COLUMNS} == {
        "image_id": "string",
        "name": "string",
        "bucket_url": "string",
        "exportable": "boolean",
        "blocking": "object",
        "warnings": "object",
        "recommended": "string",
    }
    assert all(isinstance(v, list) for v in summary["blocking"]) and all(
        isinstance(v, list) for v in summary["warnings"]
    )
    assert list(summary["image_id"]) == list(frame["id"])


@pytest.fixture()
def empties() -> Iterator[list[Any]]:
    yield [[], images_frame([]), pd.DataFrame({c: pd.Series(dtype=d) for c, d in IMAGE_COLUMNS.items()})]


def test_empty_input(empties: list[Any], client: ImsClient, sent: Any) -> None:
    for images in empties:
        for with_client in (None, client):
            violations = preflight(images, bucket_url=TEMPLATE, file_format="qcow2", client=with_client)
            assert violations.empty and list(violations.columns) == list(VIOLATION_COLUMNS)
            assert {str(violations[c].dtype) for c in VIOLATION_COLUMNS} == {"string"}
            summary = preflight_summary(images, bucket_url=TEMPLATE, file_format="qcow2", client=with_client)
            assert summary.empty and list(summary.columns) == list(SUMMARY_COLUMNS)
    assert not object_heads(sent)  # no targets, no object lookups


# --- an image shared with you ---------------------------------------------------------------------


def test_an_image_shared_with_you_is_not_private_with_or_without_a_client(
    client: ImsClient, frame: pd.DataFrame
) -> None:
    """Its own record says so (``__imagetype`` shared): no project id is needed to refuse it (IMG.0106)."""
    shared = frame[frame["image_type"] == "shared"]
    assert not shared.empty
    for with_client in (None, client):
        violations = preflight(shared, bucket_url=TEMPLATE, file_format="qcow2", client=with_client)
        refused = violations[violations["rule"] == "image-not-private"]
        assert set(refused["image_id"]) == set(shared["id"]), with_client
        assert set(refused["severity"]) == {"error"} and set(refused["code"]) == {"IMG.0106"}
        summary = preflight_summary(shared, bucket_url=TEMPLATE, file_format="qcow2", client=with_client)
        assert not summary["exportable"].any()
