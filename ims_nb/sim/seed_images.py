"""The seeded images: platforms, an ImageInfo factory, and an image of every category export treats specially."""

from __future__ import annotations

import math
import random
import uuid
from typing import Any

from ims_nb.sim.accounts import random_hex
from ims_nb.sim.clock import SIM_EPOCH, iso_seconds

GiB = 1024**3
THREE_YEARS = 3 * 365 * 24 * 3600
PUBLIC_OWNER = "00000000000000000000000000000000"  # owner of the public (gold) images, not the user
OTHER_TENANT = "a1b2c3d4e5f60718293a4b5c6d7e8f90"  # shares images with the demo project
ENTERPRISE_PROJECTS = ("0", "5e2c0f3a-6c1d-4d8e-9b7a-2f4e6a8c0b13", "9a7b5c3d-1e2f-4a6b-8c0d-e1f2a3b4c5d6")

# platform -> (os_type, os_version template, weight among private images)
PLATFORMS: dict[str, tuple[str, str, int]] = {
    "CentOS": ("Linux", "CentOS {v} 64bit", 22),
    "Debian": ("Linux", "Debian GNU/Linux {v} 64bit", 10),
    "EulerOS": ("Linux", "EulerOS {v} 64bit", 10),
    "openEuler": ("Linux", "openEuler {v} 64bit", 8),
    "Ubuntu": ("Linux", "Ubuntu {v} server 64bit", 14),
    "Windows": ("Windows", "Windows Server {v} Datacenter 64bit English", 9),
    "SUSE": ("Linux", "SUSE Linux Enterprise Server {v} 64bit", 4),
    "Red Hat": ("Linux", "Red Hat Linux {v} 64bit", 5),
    "Oracle Linux": ("Linux", "Oracle Linux Server release {v} 64bit", 3),
    "Fedora": ("Linux", "Fedora {v} 64bit", 3),
    "CoreOS": ("Linux", "CoreOS {v} 64bit", 2),
    "Other": ("Other", "Other Linux(64 bit)", 2),
}
VERSIONS: dict[str, tuple[str, ...]] = {
    "CentOS": ("7.6", "7.9", "8.2"),
    "Debian": ("10.0.0", "11.1.0", "12.0.0"),
    "EulerOS": ("2.5", "2.9", "2.10"),
    "openEuler": ("20.03", "22.03"),
    "Ubuntu": ("18.04", "20.04", "22.04"),
    "Windows": ("2016", "2019", "2022"),
    "SUSE": ("12 SP5", "15 SP4"),
    "Red Hat": ("7.9", "8.6"),
    "Oracle Linux": ("7.9", "8.6"),
    "Fedora": ("36", "38"),
    "CoreOS": ("2079.4.0",),
    "Other": ("",),
}
ROLES = ("web", "db", "cache", "batch", "ci-runner", "gateway", "analytics", "build", "golden")
FORMAT_EXT = {"qcow2": "qcow2", "vhd": "vhd", "zvhd": "zvhd", "vmdk": "vmdk"}


class _ImageFactory:
    """Builds ImageInfo records with the service's field names and string types."""

    def __init__(self, seed: int | str, project_id: str) -> None:
        self.rng = random.Random(f"images:{seed}")
        self.project_id = project_id
        self.count = 0

    def new_id(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def size_bytes(self) -> int:
        """Heavy-tailed sizes: median near 12 GiB, a long tail past 128 GiB and 1 TiB."""
        gib = math.exp(self.rng.gauss(math.log(12), 1.25))
        return int(max(0.3, min(gib, 1500)) * GiB) + self.rng.randrange(0, 1 << 20)

    def image(self, platform: str, **overrides: Any) -> dict[str, Any]:
        rng = self.rng
        self.count += 1
        os_type, version_tpl, _ = PLATFORMS[platform]
        version = rng.choice(VERSIONS[platform])
        size = overrides.pop("size", None) or self.size_bytes()
        created = SIM_EPOCH.timestamp() - rng.uniform(3600, THREE_YEARS)
        updated = created + rng.uniform(0, 30 * 24 * 3600)
        image_id = overrides.pop("id", None) or self.new_id()
        stem = platform.lower().replace(" ", "") + version.split(" ")[0].replace(".", "")
        name = f"{stem}-{rng.choice(ROLES)}-{self.count:05d}"
        tags = [
            f"env.{rng.choice(('prod', 'staging', 'dev'))}",
            f"team.{rng.choice(('platform', 'data', 'web', 'sre'))}",
        ]
        record: dict[str, Any] = {
            "id": image_id,
            "name": name,
            "__description": f"{platform} {version} {rng.choice(ROLES)} image",
            "status": "active",
            "visibility": "private",
            "owner": self.project_id,
            "protected": False,
            "__imagetype": "private",
            "__isregistered": "true",
            "__image_source_type": "uds",
            "__image_size": str(size),
            "__os_type": os_type,
            "__os_bit": "64",
            "__os_version": version_tpl.format(v=version).strip(),
            "__platform": platform,
            "__originalimagename": "",
            "__backup_id": "",
            "__data_origin": "",
            "__root_origin": "",
            "__productcode": "",
            "__lazyloading": "true",
            "__support_kvm": "true",
            "__support_xen": "false",
            "__whole_image": False,
            "__system_support_market": False,
            "disk_format": "zvhd2",
            "container_format": "bare",
            "min_disk": max(40, math.ceil(size / GiB)),
            "min_ram": rng.choice((0, 1024, 2048, 4096)),
            "max_ram": "",
            "size": 0,
            "virtual_size": None,
            "checksum": "d41d8cd98f00b204e9800998ecf8427e",
            "virtual_env_type": "FusionCompute",
            "architecture": "x86",
            "hw_firmware_type": "bios",
            "enterprise_project_id": rng.choice(ENTERPRISE_PROJECTS),
            "tags": tags,
            "created_at": iso_seconds(created),
            "updated_at": iso_seconds(updated),
            "active_at": iso_seconds(updated),
            "file": f"/v2/images/{image_id}/file",
            "self": f"/v2/images/{image_id}",
            "schema": "/v2/schemas/image",
        }
        record.update(overrides)
        return record


def _public_images(factory: _ImageFactory) -> dict[str, dict[str, Any]]:
    """One public (gold) image per platform: the parents private images are derived from."""
    parents = {}
    for platform in PLATFORMS:
        parents[platform] = factory.image(
            platform,
            size=40 * GiB,
            visibility="public",
            owner=PUBLIC_OWNER,
            protected=True,
            __imagetype="gold",
            enterprise_project_id="0",
            tags=[],
        )
        parents[platform]["name"] = f"{platform} public image"
    return parents


def _derived(factory: _ImageFactory, parent: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    return factory.image(parent["__platform"], __originalimagename=parent["id"], **overrides)


def _guaranteed(
    factory: _ImageFactory, parents: dict[str, dict[str, Any]], market: dict[str, Any]
) -> list[dict[str, Any]]:
    """At least one image of every category the export API treats specially."""
    centos, debian = parents["CentOS"], parents["Debian"]
    rows = [
        _derived(factory, centos, size=8 * GiB),
        _derived(factory, debian, size=20 * GiB),
        factory.image("Windows", __root_origin="file", size=30 * GiB),  # imported: not a public-image child
        _derived(factory, centos, size=128 * GiB),  # exactly at the normal-export limit
        _derived(factory, centos, size=200 * GiB),  # fast export only
        _derived(factory, debian, size=700 * GiB),  # fast export only
        _derived(factory, centos, size=1024 * GiB),  # exactly 1 TiB: refused
        _derived(factory, debian, size=1300 * GiB),  # over 1 TiB
        _derived(
            factory,
            centos,
            size=16 * GiB,
            __whole_image=True,
            __backup_id=str(uuid.UUID(int=factory.rng.getrandbits(128))),
        ),
        factory.image("Other", size=4 * GiB, virtual_env_type="IsoImage", disk_format="iso"),
        _derived(factory, centos, size=12 * GiB, __system__cmkid=str(uuid.UUID(int=factory.rng.getrandbits(128)))),
        _derived(factory, debian, size=300 * GiB, __system__cmkid=str(uuid.UUID(int=factory.rng.getrandbits(128)))),
        _derived(factory, market, size=40 * GiB, __productcode=market["__productcode"]),
        _derived(factory, centos, size=100 * GiB, virtual_env_type="DataImage", __os_type="Linux"),
        _derived(factory, centos, size=10 * GiB, status="queued"),
        _derived(factory, centos, size=10 * GiB, status="saving"),
        _derived(factory, debian, size=10 * GiB, status="killed"),
        _derived(factory, parents["Fedora"], size=9 * GiB, architecture="arm", __support_arm="true"),
    ]
    for platform in ("Windows", "SUSE", "Red Hat", "Ubuntu", "Oracle Linux"):
        rows.append(_derived(factory, parents[platform], size=25 * GiB))
    return rows


def _shared_and_market(factory: _ImageFactory) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    market = factory.image(
        "CentOS",
        size=40 * GiB,
        visibility="public",
        owner=PUBLIC_OWNER,
        __imagetype="market",
        __productcode="00301-" + random_hex(factory.rng, 6),
        __system_support_market=True,
        enterprise_project_id="0",
        tags=[],
    )
    market["name"] = "KooGallery LAMP stack"
    shared = [
        factory.image(
            p, size=30 * GiB, visibility="shared", owner=OTHER_TENANT, __imagetype="shared", enterprise_project_id="0"
        )
        for p in ("CentOS", "Debian")
    ]
    return market, shared


def _random_private(
    factory: _ImageFactory, parents: dict[str, dict[str, Any]], market: dict[str, Any]
) -> dict[str, Any]:
    rng = factory.rng
    platforms = list(PLATFORMS)
    platform = rng.choices(platforms, weights=[PLATFORMS[p][2] for p in platforms])[0]
    roll = rng.random()
    overrides: dict[str, Any] = {}
    if roll < 0.04:
        overrides["__whole_image"] = True
    elif roll < 0.07:
        overrides["virtual_env_type"] = "IsoImage"
        overrides["disk_format"] = "iso"
        overrides["size"] = int(rng.uniform(1, 8) * GiB)
    elif roll < 0.15:
        overrides["virtual_env_type"] = "DataImage"
    if rng.random() < 0.07:
        overrides["__system__cmkid"] = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    status = rng.choices(("active", "queued", "saving", "killed"), weights=(92, 2, 4, 2))[0]
    if rng.random() < 0.03:
        return _derived(factory, market, __productcode=market["__productcode"], status=status, **overrides)
    if rng.random() < 0.2:
        return factory.image(platform, __root_origin="file", status=status, **overrides)
    return _derived(factory, parents[platform], status=status, **overrides)


def build_images(world: int | str, project_id: str, count: int) -> list[dict[str, Any]]:
    """The images of a project, from the seed ``world``: public, market and shared ones, one of every special
    category, then random private ones up to ``count``."""
    factory = _ImageFactory(world, project_id)
    parents = _public_images(factory)
    market, shared = _shared_and_market(factory)
    rows = list(parents.values()) + [market] + shared + _guaranteed(factory, parents, market)
    while len(rows) < count:
        rows.append(_random_private(factory, parents, market))
    return rows
