"""Export targets: each bucket's verdict (missing, other region, not Standard, fine) and usable buckets first."""

from __future__ import annotations

import pytest

from ims_nb import ImsClient
from ims_nb.client.wire import BucketInfo
from ims_nb.errors import ConfigError
from ims_nb.targets import BucketChoice, bucket_choices, default_bucket, judge_bucket

pytestmark = pytest.mark.usefixtures("clean_env")

REGION = "cn-north-4"


@pytest.mark.parametrize(
    ("bucket", "problem"),
    [
        (BucketInfo("gone", exists=False), "does not exist"),
        (BucketInfo("gone", exists=False, region="ap-southeast-1", storage_class="COLD"), "does not exist"),
        (BucketInfo("far", True, "ap-southeast-1", "STANDARD"), "in ap-southeast-1, not cn-north-4"),
        (BucketInfo("far-cold", True, "ap-southeast-1", "COLD"), "in ap-southeast-1, not cn-north-4"),
        (BucketInfo("warm", True, REGION, "WARM"), "WARM storage, not Standard"),
        (BucketInfo("cold", True, REGION, "COLD"), "COLD storage, not Standard"),
        (BucketInfo("deep", True, REGION, "DEEP_ARCHIVE"), "DEEP_ARCHIVE storage, not Standard"),
        (BucketInfo("fine", True, REGION, "STANDARD"), None),
        (BucketInfo("no-class", True, REGION, None), None),  # no storage class reported: Standard
        (BucketInfo("no-region", True, None, "STANDARD"), None),  # region unknown: not held against it
    ],
)
def test_judge_bucket_names_the_first_problem(bucket: BucketInfo, problem: str | None) -> None:
    choice = judge_bucket(bucket, REGION)
    assert choice == BucketChoice(bucket, problem)
    assert choice.name == bucket.name


def test_a_client_without_a_region_only_checks_existence_and_class() -> None:
    assert judge_bucket(BucketInfo("far", True, "ap-southeast-1", "STANDARD"), None).problem is None
    assert judge_bucket(BucketInfo("far", True, "ap-southeast-1", "WARM"), None).problem == "WARM storage, not Standard"


def test_labels_say_class_region_and_problem() -> None:
    assert judge_bucket(BucketInfo("fine", True, REGION, "STANDARD"), REGION).label == "fine (STANDARD, cn-north-4)"
    warm = judge_bucket(BucketInfo("warm", True, REGION, "WARM"), REGION)
    assert warm.label == "warm (WARM, cn-north-4): WARM storage, not Standard"
    gone = judge_bucket(BucketInfo("gone", exists=False), REGION)
    assert gone.label == "gone (?, ?): does not exist"


def test_bucket_choices_of_the_simulator_usable_first_then_by_name(sim_client: ImsClient) -> None:
    choices = bucket_choices(sim_client)
    assert [(c.name, c.problem) for c in choices] == [
        ("ims-exports-cn-north-4", None),
        ("ims-exports-scratch", None),
        ("ims-archive-cold", "COLD storage, not Standard"),
        ("ims-archive-deep", "DEEP_ARCHIVE storage, not Standard"),
        ("ims-archive-warm", "WARM storage, not Standard"),
        ("ims-exports-ap-southeast-1", "in ap-southeast-1, not cn-north-4"),
    ]
    assert default_bucket(sim_client) == "ims-exports-cn-north-4"


class StubAccount:
    """An account's buckets without a service: what ``bucket_choices`` reads of a client."""

    def __init__(self, region: str | None, *buckets: BucketInfo) -> None:
        self.region = region
        self._buckets = {b.name: b for b in buckets}
        self.looked_up: list[str] = []

    def buckets(self) -> list[BucketInfo]:
        # like the service's list: names and regions only, the storage class comes from bucket(name)
        return [BucketInfo(b.name, True, b.region) for b in self._buckets.values()]

    def bucket(self, name: str) -> BucketInfo:
        self.looked_up.append(name)
        return self._buckets[name]


def test_bucket_choices_judge_each_bucket_by_its_own_lookup() -> None:
    account = StubAccount(
        REGION,
        BucketInfo("zz-standard", True, REGION, "STANDARD"),
        BucketInfo("aa-warm", True, REGION, "WARM"),
        BucketInfo("mm-standard", True, REGION, None),
        BucketInfo("bb-far", True, "eu-west-0", "STANDARD"),
    )
    choices = bucket_choices(account)
    assert [c.name for c in choices] == ["mm-standard", "zz-standard", "aa-warm", "bb-far"]
    assert sorted(account.looked_up) == ["aa-warm", "bb-far", "mm-standard", "zz-standard"]
    assert default_bucket(account) == "mm-standard"


def test_default_bucket_without_a_usable_bucket_is_a_config_error_listing_them() -> None:
    account = StubAccount(REGION, BucketInfo("warm", True, REGION, "WARM"), BucketInfo("far", True, "eu-west-0"))
    with pytest.raises(ConfigError, match="no bucket can receive exports from cn-north-4") as raised:
        default_bucket(account)
    message = str(raised.value)
    assert "warm (WARM, cn-north-4): WARM storage, not Standard" in message
    assert "far (?, eu-west-0): in eu-west-0, not cn-north-4" in message
    assert "create a Standard bucket" in message


def test_default_bucket_of_an_account_without_buckets() -> None:
    assert bucket_choices(StubAccount(REGION)) == []
    with pytest.raises(ConfigError, match=r"\(buckets: none\)"):
        default_bucket(StubAccount(REGION))
