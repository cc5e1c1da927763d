"""A multi-region simulator: one simulation per region sharing the IAM and the clock, each on its own endpoint."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import uvicorn

from ims_nb.sim.app import Simulation
from ims_nb.sim.backend import SimBackend
from ims_nb.sim.clock import SimClock
from ims_nb.sim.iam import SUB_PROJECTS
from ims_nb.sim.store import Store

#: The services whose per-region endpoint ``regions_file`` writes (the official SDK's service names).
REGIONS_FILE_SERVICES = ("IMS", "IAM", "OBS")


def parse_regions(text: str) -> list[str]:
    """``R1,R2,...`` as a list: no empty or repeated region.

    Raises:
        ValueError: an empty list, an empty item or a region named twice.
    """
    regions = [item.strip() for item in text.split(",")]
    if not regions or any(not region for region in regions):
        raise ValueError(f"regions must be a comma-separated list of region ids, not {text!r}")
    if len(set(regions)) != len(regions):
        raise ValueError(f"a region is named twice in {text!r}")
    return regions


def state_path(state: str | Path, index: int, region: str) -> Path:
    """The first region keeps ``state``; the others each have a file beside it (``sim.db`` → ``sim.<region>.db``)."""
    path = Path(state)
    return path if index == 0 else path.with_name(f"{path.stem}.{region}{path.suffix}")


def build_estate(
    *,
    regions: Sequence[str],
    seed: int = 0,
    images: int = 200,
    time_scale: float = 60.0,
    manual_clock: bool = False,
    state: str | Path | None = None,
    team: int = 0,
) -> list[Simulation]:
    """One simulation per region, the first region's first; they share one IAM, one clock and one region map.

    The first region keeps the seed's single-region world and adds the sub-projects of ``SUB_PROJECTS``; each
    other region has a world of its own (the region's name mixed into the seed).
    """
    clock = SimClock(scale=time_scale, manual=manual_clock)
    backends: list[SimBackend] = []
    for index, region in enumerate(regions):
        store = Store(state_path(state, index, region)) if state is not None else None
        backends.append(
            SimBackend(
                seed=seed,
                images=images,
                region=region,
                clock=clock,
                store=store,
                iam=backends[0].iam if backends else None,
                sub_projects=() if backends else SUB_PROJECTS,
                team=team,
            )
        )
    simulations = [Simulation(backend) for backend in backends]
    shared = {simulation.backend.region: simulation for simulation in simulations}
    for simulation in simulations:
        simulation.regions = shared
    return simulations


def region_map(simulations: Sequence[Simulation], endpoints: Sequence[str]) -> dict[str, dict[str, str]]:
    """``{"<region>": {"endpoint", "project_id"}}``: what the JSON line adds under ``"regions"``."""
    return {
        simulation.backend.region: {"endpoint": endpoint, "project_id": simulation.backend.project_id}
        for simulation, endpoint in zip(simulations, endpoints, strict=True)
    }


def project_list(simulations: Sequence[Simulation]) -> list[dict[str, str]]:
    """Every project of the account (sub-projects included): ``[{"id", "name", "region"}]``."""
    projects = simulations[0].backend.iam.projects
    return [{key: value for key, value in asdict(p).items() if key in ("id", "name", "region")} for p in projects]


def regions_file(regions: dict[str, dict[str, str]]) -> str:
    """The official SDK's region override file (``regions.yaml``, read through ``$HUAWEICLOUD_SDK_REGIONS_FILE``):
    each service → ``[{id, endpoint}]``, in huaweicloudsdkcore's ``ProfileRegionCache`` format."""
    lines = []
    for service in REGIONS_FILE_SERVICES:
        lines.append(f"{service}:")
        for region, where in regions.items():
            lines.extend([f"  - id: '{region}'", f"    endpoint: '{where['endpoint']}'"])
    return "\n".join(lines) + "\n"


def write_regions_file(path: str | Path, regions: dict[str, dict[str, str]]) -> Path:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(regions_file(regions), encoding="utf-8")
    return target


async def serve_all(servers: Sequence[uvicorn.Server], sockets: Sequence[socket.socket]) -> None:
    """Serve every region in one event loop; when one server stops (a signal reaches one), all stop."""
    tasks = [asyncio.create_task(s.serve(sockets=[k])) for s, k in zip(servers, sockets, strict=True)]
    await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for server in servers:
        server.should_exit = True
    await asyncio.gather(*tasks)
