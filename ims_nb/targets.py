"""Where exports can go: the account's buckets, usable ones (Standard, in the client's region) first."""

from __future__ import annotations

from dataclasses import dataclass

from ims_nb.client.protocol import ClientLike
from ims_nb.client.wire import BucketInfo
from ims_nb.errors import ConfigError

STANDARD = "STANDARD"


@dataclass(frozen=True)
class BucketChoice:
    """A bucket as an export target: usable, or why not."""

    bucket: BucketInfo
    problem: str | None  # None when the bucket can receive exports

    @property
    def name(self) -> str:
        return self.bucket.name

    @property
    def label(self) -> str:
        where = f"{self.bucket.storage_class or '?'}, {self.bucket.region or '?'}"
        return f"{self.name} ({where})" + (f": {self.problem}" if self.problem else "")


def judge_bucket(bucket: BucketInfo, region: str | None) -> BucketChoice:
    """Whether exports from ``region`` can be written to ``bucket`` (the service's bucket rules)."""
    if not bucket.exists:
        return BucketChoice(bucket, "does not exist")
    if region and bucket.region and bucket.region != region:
        return BucketChoice(bucket, f"in {bucket.region}, not {region}")
    if (bucket.storage_class or STANDARD) != STANDARD:
        return BucketChoice(bucket, f"{bucket.storage_class} storage, not Standard")
    return BucketChoice(bucket, None)


def bucket_choices(client: ClientLike) -> list[BucketChoice]:
    """Every bucket of the account with its verdict, usable ones first, then by name."""
    region = getattr(client, "region", None)
    found = [judge_bucket(client.bucket(b.name), region) for b in client.buckets()]
    return sorted(found, key=lambda c: (c.problem is not None, c.name))


def default_bucket(client: ClientLike) -> str:
    """The first usable bucket of the account (by name), for notebooks that need one to judge exports against.

    Raises:
        ConfigError: no bucket of the account can receive exports from the client's region.
    """
    choices = bucket_choices(client)
    usable = [c.name for c in choices if c.problem is None]
    if not usable:
        seen = "; ".join(c.label for c in choices) or "none"
        raise ConfigError(f"no bucket can receive exports from {getattr(client, 'region', '?')} (buckets: {seen}); "
                          "create a Standard bucket in that region")  # fmt: skip
    return usable[0]
