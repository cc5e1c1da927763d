"""Serving the simulator with uvicorn: in a background thread (tests, notebooks) or in the foreground (CLI)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import uvicorn

from ims_nb.sim.app import Simulation
from ims_nb.sim.backend import SimBackend
from ims_nb.sim.clock import SimClock
from ims_nb.sim.estate import build_estate, project_list, region_map, serve_all
from ims_nb.sim.store import Store

STARTUP_TIMEOUT = 10.0


@dataclass(frozen=True)
class SimInfo:
    """How to reach a running simulator: what ``ims-nb sim`` prints as its one JSON line.

    The five first fields are the first region's; a multi-region simulator adds ``regions`` (region →
    endpoint and project id) and ``projects`` (every project, sub-projects included: id, name, region).
    """

    endpoint: str
    region: str
    project_id: str
    ak: str
    sk: str
    regions: dict[str, dict[str, str]] | None = None
    projects: list[dict[str, str]] | None = None

    def __repr__(self) -> str:  # the SK is a demo secret, but it still stays out of reprs
        return (
            f"SimInfo(endpoint={self.endpoint!r}, region={self.region!r}, "
            f"project_id={self.project_id!r}, ak={self.ak!r}, sk='***')"
        )

    def as_json_dict(self) -> dict[str, str]:
        return {
            "endpoint": self.endpoint,
            "region": self.region,
            "project_id": self.project_id,
            "ak": self.ak,
            "sk": self.sk,
        }

    def line(self) -> dict[str, Any]:
        """The JSON line: the five fields, and the region and project maps of a multi-region simulator."""
        extra = {} if self.regions is None else {"regions": self.regions, "projects": self.projects}
        return self.as_json_dict() | extra


def build_simulation(
    *,
    seed: int = 0,
    images: int = 200,
    region: str = "cn-north-4",
    time_scale: float = 60.0,
    manual_clock: bool = False,
    state: str | Path | None = None,
    team: int = 0,
) -> Simulation:
    """A simulation whose world comes from ``state`` when it holds one, else from the seed."""
    clock = SimClock(scale=time_scale, manual=manual_clock)
    store = Store(state) if state is not None else None
    return Simulation(SimBackend(seed=seed, images=images, region=region, clock=clock, store=store, team=team))


def check_host(host: str, allow_remote: bool) -> None:
    """The simulator binds loopback only, unless the caller insists."""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback and not allow_remote:
        raise ValueError(
            f"refusing to bind {host}: the simulator serves loopback only (pass --allow-remote to override)"
        )


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # asyncio sets TCP_NODELAY only then
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    return sock


def endpoint_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def info_of(simulation: Simulation, endpoint: str) -> SimInfo:
    backend = simulation.backend
    operator = backend.accounts["ims-operator"]
    return SimInfo(endpoint, backend.region, backend.project_id, operator.ak, operator.sk)


def estate_info(simulations: Sequence[Simulation], endpoints: Sequence[str]) -> SimInfo:
    """The line of a multi-region simulator: the first region's five fields, and the region and project maps."""
    first = info_of(simulations[0], endpoints[0])
    return SimInfo(
        first.endpoint,
        first.region,
        first.project_id,
        first.ak,
        first.sk,
        region_map(simulations, endpoints),
        project_list(simulations),
    )


def build_simulations(regions: Sequence[str] | None = None, **options: Any) -> list[Simulation]:
    """One simulation (no ``regions``, or one) as ``build_simulation``, else ``build_estate``'s, one per region."""
    if regions is not None and len(regions) > 1:
        options.pop("region", None)
        return build_estate(regions=regions, **options)
    options.update({"region": regions[0]} if regions else {})
    return [build_simulation(**options)]


def info_for(simulations: Sequence[Simulation], endpoints: Sequence[str]) -> SimInfo:
    """The JSON line of one simulation (its five fields, as always) or of several regions."""
    return info_of(simulations[0], endpoints[0]) if len(simulations) == 1 else estate_info(simulations, endpoints)


def serve(servers: Sequence[uvicorn.Server], sockets: Sequence[socket.socket]) -> None:
    """Serve until the servers stop: one as uvicorn runs it, several in one event loop."""
    if len(servers) == 1:
        servers[0].run(sockets=list(sockets))
    else:
        asyncio.run(serve_all(servers, sockets))


def uvicorn_server(simulation: Simulation) -> uvicorn.Server:
    config = uvicorn.Config(
        simulation,
        log_level="warning",
        lifespan="off",
        access_log=False,
        timeout_keep_alive=30,
        h11_max_incomplete_event_size=64 * 1024,
    )
    return uvicorn.Server(config)


class Simulator:
    """Run the simulator on a loopback port in a background thread; use it as a context manager.

    ``regions`` (two or more) serves each region on a port of its own (``info.regions`` maps them), ``port``
    being the first region's.

    >>> with Simulator(seed=0, manual_clock=True) as sim:   # doctest: +SKIP
    ...     sim.info.endpoint
    """

    def __init__(
        self, *, host: str = "127.0.0.1", port: int = 0, regions: Sequence[str] | None = None, **options: Any
    ) -> None:
        check_host(host, allow_remote=False)
        self.simulations = build_simulations(regions, **options)
        self.simulation = self.simulations[0]
        self._socks = [bind(host, port if n == 0 else 0) for n in range(len(self.simulations))]
        self.info = info_for(self.simulations, [endpoint_of(sock) for sock in self._socks])
        self._servers = [uvicorn_server(simulation) for simulation in self.simulations]
        self._thread: threading.Thread | None = None

    @property
    def backend(self) -> SimBackend:
        return self.simulation.backend

    @property
    def endpoint(self) -> str:
        return self.info.endpoint

    def start(self) -> Simulator:
        self._thread = threading.Thread(
            target=serve, args=(self._servers, self._socks), name="ims-nb-simulator", daemon=True
        )
        self._thread.start()
        started = threading.Event()
        for _ in range(int(STARTUP_TIMEOUT / 0.01)):
            if all(server.started for server in self._servers):
                started.set()
                break
            if not self._thread.is_alive():
                break
            started.wait(0.01)
        if not started.is_set():
            self.stop()
            raise RuntimeError("the simulator did not start")
        return self

    def stop(self) -> None:
        for server in self._servers:
            server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        for sock in self._socks:
            sock.close()
        for simulation in self.simulations:
            if simulation.backend.store is not None:
                simulation.backend.store.close()

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"Simulator(SIMULATOR at {self.info.endpoint}, region={self.info.region})"
