"""Global IAM of the simulated account: users, tokens, temporary keys and every project of every region."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ims_nb.sim.inventory import Account, Inventory, build_inventory, team_accounts
from ims_nb.sim.sts import TemporaryKeys

#: The sub-projects of the first region of a multi-region simulator (IAM names them ``<region>_<suffix>``).
SUB_PROJECTS = ("dev",)


@dataclass(frozen=True)
class Project:
    """One IAM project: a region's own project (named after the region) or a sub-project of it."""

    id: str
    name: str
    region: str
    parent_id: str  # the account (domain) for a region's project, the region's project for a sub-project
    description: str = ""

    def view(self, domain_id: str) -> dict[str, Any]:
        """The project as ``GET /v3/projects`` and ``GET /v3/auth/projects`` show it."""
        return {
            "id": self.id,
            "name": self.name,
            "domain_id": domain_id,
            "enabled": True,
            "is_domain": False,
            "parent_id": self.parent_id,
            "description": self.description,
            "links": {"self": f"/v3/projects/{self.id}"},
        }


@dataclass
class Iam:
    """What every region's endpoint shares: one account store, its tokens and temporary keys, all projects.

    ``team`` operators (``ims-operator-2`` ...) join the seed's two demo users, in the same project.
    """

    team: int = 0
    domain_id: str = ""
    domain_name: str = ""
    accounts: dict[str, Account] = field(default_factory=dict)
    tokens: dict[str, dict[str, Any]] = field(default_factory=dict)
    temporary: TemporaryKeys = field(default_factory=TemporaryKeys)
    regions: dict[str, list[Project]] = field(default_factory=dict)

    def reset(self, inventory: Inventory, seed: int) -> None:
        """The seed's account and users; tokens and temporary keys are dropped (projects stay per region)."""
        self.domain_id, self.domain_name = inventory.domain_id, inventory.domain_name
        self.accounts = {a.name: a for a in inventory.accounts + team_accounts(seed, self.team)}
        self.tokens.clear()
        self.temporary = TemporaryKeys()

    @property
    def projects(self) -> list[Project]:
        return [project for projects in self.regions.values() for project in projects]

    def account_by_ak(self, access_key: str) -> Account | None:
        return next((a for a in self.accounts.values() if a.ak == access_key), None)

    def account_by_id(self, user_id: str) -> Account | None:
        return next((a for a in self.accounts.values() if a.user_id == user_id), None)

    def project(self, *, project_id: str | None = None, name: str | None = None) -> Project | None:
        return next((p for p in self.projects if p.id == project_id or p.name == name), None)

    def matching(self, query: dict[str, str]) -> list[Project]:
        """The projects ``GET /v3/projects`` answers for its ``name``, ``parent_id``, ``domain_id``, ``enabled``."""
        found = []
        for project in self.projects:
            view = project.view(self.domain_id)
            if all(str(view[key]).lower() == query[key].lower() for key in ("enabled",) if key in query) and all(
                view[key] == query[key] for key in ("name", "parent_id", "domain_id") if key in query
            ):
                found.append(project)
        return found


class RegionIam:
    """The IAM side of one region's backend: the shared ``Iam``'s account, users and tokens, the region's projects."""

    iam: Iam
    owns_iam: bool  # the first region's backend: its resets reset the account
    seed: int
    region: str
    project_id: str
    projects: list[Project]

    def _set_identity(self, inventory: Inventory, projects: list[Project]) -> None:
        """The seed's account (when this backend owns the IAM) and this region's projects."""
        if self.owns_iam:
            self.iam.reset(inventory, self.seed)
        self.project_id = projects[0].id
        self.projects = projects
        self.iam.regions[self.region] = projects

    @property
    def accounts(self) -> dict[str, Account]:
        return self.iam.accounts

    @property
    def tokens(self) -> dict[str, dict[str, Any]]:
        return self.iam.tokens

    @property
    def temporary(self) -> TemporaryKeys:
        return self.iam.temporary

    @property
    def domain_id(self) -> str:
        return self.iam.domain_id

    @property
    def domain_name(self) -> str:
        return self.iam.domain_name


def derived_project_id(seed: int, name: str) -> str:
    """A project id (32 hex digits) that the seed and the project's name determine."""
    return hashlib.sha256(f"project:{seed}:{name}".encode()).hexdigest()[:32]


def region_projects(seed: int, region: str, main_id: str, domain_id: str, subs: Sequence[str]) -> list[Project]:
    """The region's own project, then its sub-projects ``<region>_<suffix>``."""
    projects = [Project(main_id, region, region, domain_id)]
    for suffix in subs:
        name = f"{region}_{suffix}"
        projects.append(Project(derived_project_id(seed, name), name, region, main_id, f"{suffix} projects"))
    return projects


def region_world(
    seed: int, images: int, region: str, *, primary: bool, subs: Sequence[str]
) -> tuple[Inventory, list[Project]]:
    """The seeded world of one region and its projects.

    The first (``primary``) region keeps the single-region world of the seed as is; every other region gets
    images, a project id and buckets of its own (the region's name mixed into the seed). Sub-projects add
    private images of their own (a quarter of ``images``, plus the categories every world has).
    """
    if primary:
        inventory = build_inventory(seed, images, region)
    else:
        own = derived_project_id(seed, region)
        inventory = build_inventory(seed, images, region, world=f"{seed}:{region}", project=own)
        inventory.project_id = own
        inventory.buckets = regional_buckets(region, inventory.buckets[0]["created"])
    projects = region_projects(seed, region, inventory.project_id, inventory.domain_id, subs)
    for sub in projects[1:]:
        extra = build_inventory(seed, images // 4, region, world=f"{seed}:{sub.name}", project=sub.id)
        inventory.images.extend(image for image in extra.images if image["owner"] == sub.id)
    return inventory, projects


def regional_buckets(region: str, created: str) -> list[dict[str, Any]]:
    """Buckets of a region other than the first: bucket names are global, so each carries its region's name."""
    return [
        {"name": f"ims-exports-{region}", "location": region, "storage_class": "STANDARD", "created": created},
        {"name": f"ims-archive-warm-{region}", "location": region, "storage_class": "WARM", "created": created},
        {"name": f"ims-archive-cold-{region}", "location": region, "storage_class": "COLD", "created": created},
    ]
