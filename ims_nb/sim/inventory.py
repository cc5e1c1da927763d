"""A seeded, realistic account: its users, images, buckets and objects, all from one seed."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from ims_nb.sim.accounts import OPERATOR, Account, make_accounts, team_accounts, user_id
from ims_nb.sim.clock import SIM_EPOCH, iso_seconds
from ims_nb.sim.seed_images import build_images

__all__ = [
    "OPERATOR",
    "Account",
    "Inventory",
    "build_buckets",
    "build_inventory",
    "make_accounts",
    "team_accounts",
    "user_id",
]


@dataclass
class Inventory:
    """Everything a seed produces."""

    region: str
    domain_id: str
    domain_name: str
    project_id: str
    accounts: list[Account]
    images: list[dict[str, Any]]
    buckets: list[dict[str, Any]]
    objects: list[dict[str, Any]] = field(default_factory=list)


def build_buckets(region: str) -> list[dict[str, Any]]:
    """Standard in-region buckets, WARM, COLD and DEEP_ARCHIVE ones, and one in another region."""
    other = "ap-southeast-1" if region != "ap-southeast-1" else "cn-north-4"
    created = iso_seconds(SIM_EPOCH.timestamp() - 400 * 24 * 3600)
    return [
        {"name": f"ims-exports-{region}", "location": region, "storage_class": "STANDARD", "created": created},
        {"name": "ims-exports-scratch", "location": region, "storage_class": "STANDARD", "created": created},
        {"name": "ims-archive-warm", "location": region, "storage_class": "WARM", "created": created},
        {"name": "ims-archive-cold", "location": region, "storage_class": "COLD", "created": created},
        {"name": "ims-archive-deep", "location": region, "storage_class": "DEEP_ARCHIVE", "created": created},
        {"name": f"ims-exports-{other}", "location": other, "storage_class": "STANDARD", "created": created},
    ]


def build_inventory(
    seed: int = 0, images: int = 200, region: str = "cn-north-4", *, world: str | None = None, project: str = ""
) -> Inventory:
    """Everything the simulator holds after a reset with this seed: same seed, same everything.

    ``world`` (a seed for the images) and ``project`` (their owner) give another project its own images.
    """
    if images < 0:
        raise ValueError(f"image count must not be negative, not {images}")
    domain_id, project_id, accounts = make_accounts(seed)
    project_id = project or project_id
    rows = build_images(seed if world is None else world, project_id, images)
    buckets = build_buckets(region)
    taken = next(r for r in rows if r["visibility"] == "private" and r["status"] == "active")
    objects = [
        {
            "bucket": buckets[0]["name"],
            "key": f"exports/{taken['name']}.qcow2",
            "size": int(taken["__image_size"]) // 2,
            "created": iso_seconds(SIM_EPOCH.timestamp() - 86400),
            "etag": hashlib.md5(taken["id"].encode()).hexdigest(),  # noqa: S324 - an ETag, not security
        },
        {
            "bucket": buckets[0]["name"],
            "key": "README.txt",
            "size": 512,
            "created": iso_seconds(SIM_EPOCH.timestamp() - 300 * 86400),
            "etag": hashlib.md5(b"README").hexdigest(),  # noqa: S324
        },
    ]
    return Inventory(region, domain_id, f"ims-demo-{domain_id[:6]}", project_id, accounts, rows, buckets, objects)
