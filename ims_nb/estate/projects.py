"""The account's projects (``GET /v3/auth/projects``) and which of them an estate covers."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from typing import Any

from ims_nb.errors import ConfigError, MalformedAnswerError
from ims_nb.vocab import Scope

AUTH_PROJECTS_PATH = "/v3/auth/projects"
#: How IAM names a sub-project: the region's project name, this, and a name of its own (``cn-north-4_dev``).
SUB_PROJECT_SEPARATOR = "_"
#: ``regions="all"``: every region the account has a project in.
ALL = "all"


@dataclass(frozen=True)
class Project:
    """One project of the account: its id, name and region (the name's region part), and whether it is a
    sub-project (``cn-north-4_dev``) rather than the region's own project."""

    id: str
    name: str
    region: str
    enabled: bool = True

    @property
    def is_sub_project(self) -> bool:
        return self.name != self.region

    @property
    def scope(self) -> Scope:
        return (self.region, self.id)


def parse_projects(answer: dict[str, Any], known_region: Callable[[str], bool]) -> list[Project]:
    """IAM's answer to ``GET /v3/auth/projects`` (its JSON object: ``iam_read``) as the projects whose name starts
    with a region ``known_region`` accepts (``MOS`` and other service projects are left out).

    Raises:
        MalformedAnswerError: the answer has no list of projects (``iam_read`` asks again).
    """
    listed = answer.get("projects")
    if not isinstance(listed, list):
        raise MalformedAnswerError("IAM's project list has no projects")
    return [p for p in (_project(item, known_region) for item in listed) if p is not None]


def _project(item: Any, known_region: Callable[[str], bool]) -> Project | None:
    if not isinstance(item, dict) or not isinstance(item.get("id"), str) or not isinstance(item.get("name"), str):
        return None
    name = item["name"]
    region = name.split(SUB_PROJECT_SEPARATOR, 1)[0]
    if not known_region(region):
        return None
    return Project(item["id"], name, region, item.get("enabled") is not False)


def select(
    projects: Iterable[Project],
    regions: str | Collection[str],
    names: Collection[str] | None,
    *,
    include_subprojects: bool = True,
    exclude: Collection[str] = (),
) -> list[Project]:
    """The enabled projects of ``regions`` (``"all"`` or a list), named in ``names`` (by name or id) when given,
    sub-projects included unless ``include_subprojects`` is False, minus ``exclude`` (names or ids).

    Raises:
        ConfigError: a region or project asked for that the account does not have.
    """
    every = [p for p in projects if p.enabled]
    if regions != ALL:
        missing = sorted(set(regions) - {p.region for p in every})
        if missing:
            raise ConfigError(f"the account has no project in region(s) {', '.join(missing)}")
        every = [p for p in every if p.region in regions]
    if names is not None:
        missing = sorted(set(names) - {p.name for p in every} - {p.id for p in every})
        if missing:
            raise ConfigError(f"no such project in these regions: {', '.join(missing)}")
        every = [p for p in every if p.name in names or p.id in names]
    elif not include_subprojects:
        every = [p for p in every if not p.is_sub_project]
    chosen = [p for p in every if p.name not in exclude and p.id not in exclude]
    if not chosen:
        raise ConfigError("no project left to cover: check regions, projects and exclude")
    return sorted(chosen, key=lambda p: (p.region, p.is_sub_project, p.name))


def regions_argument(regions: str | Iterable[str]) -> str | list[str]:
    """``"all"``, or the regions as a list (a comma-separated string is split), parsed once at the edge."""
    if isinstance(regions, str):
        if regions == ALL:
            return ALL
        regions = regions.split(",")
    found = [r.strip() for r in regions if r.strip()]
    if not found:
        raise ConfigError(f'regions must be "{ALL}" or region ids, not {regions!r}')
    return list(dict.fromkeys(found))
