"""Serving the simulator with uvicorn: in a background thread (tests, notebooks) or in the foreground (CLI)."""

from __future__ import annotations

import ipaddress
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import uvicorn

from ims_nb.sim.app import Simulation
from ims_nb.sim.backend import SimBackend
from ims_nb.sim.clock import SimClock
from ims_nb.sim.store import Store

STARTUP_TIMEOUT = 10.0


@dataclass(frozen=True)
class SimInfo:
    """How to reach a running simulator: what ``ims-nb sim`` prints as its one JSON line."""

    endpoint: str
    region: str
    project_id: str
    ak: str
    sk: str

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


def build_simulation(
    *,
    seed: int = 0,
    images: int = 200,
    region: str = "cn-north-4",
    time_scale: float = 60.0,
    manual_clock: bool = False,
    state: str | Path | None = None,
) -> Simulation:
    """A simulation whose world comes from ``state`` when it holds one, else from the seed."""
    clock = SimClock(scale=time_scale, manual=manual_clock)
    store = Store(state) if state is not None else None
    return Simulation(SimBackend(seed=seed, images=images, region=region, clock=clock, store=store))


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

    >>> with Simulator(seed=0, manual_clock=True) as sim:   # doctest: +SKIP
    ...     sim.info.endpoint
    """

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, **options: Any) -> None:
        check_host(host, allow_remote=False)
        self.simulation = build_simulation(**options)
        self._sock = bind(host, port)
        self.info = info_of(self.simulation, endpoint_of(self._sock))
        self._server = uvicorn_server(self.simulation)
        self._thread: threading.Thread | None = None

    @property
    def backend(self) -> SimBackend:
        return self.simulation.backend

    @property
    def endpoint(self) -> str:
        return self.info.endpoint

    def start(self) -> Simulator:
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, name="ims-nb-simulator", daemon=True
        )
        self._thread.start()
        started = threading.Event()
        for _ in range(int(STARTUP_TIMEOUT / 0.01)):
            if self._server.started:
                started.set()
                break
            if not self._thread.is_alive():
                break
            started.wait(0.01)
        if not self._server.started:
            self.stop()
            raise RuntimeError("the simulator did not start")
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._sock.close()
        if self.backend.store is not None:
            self.backend.store.close()

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"Simulator(SIMULATOR at {self.info.endpoint}, region={self.info.region})"
