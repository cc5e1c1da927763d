"""The fault matrix's worlds: the embedded simulator (reset between runs), or a process with --state (restarted)."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from benchmarks.drills.fault_matrix.scenarios import SEED, Scenario
from ims_nb.sim import Simulator


class EmbeddedWorld:
    """One in-process simulator for every run; ``prepare`` resets it to the seed (no jobs, no faults)."""

    def __init__(self, images: int) -> None:
        self.images = images
        self.simulator = Simulator(seed=SEED, images=images, manual_clock=True).start()
        self.info = self.simulator.info.as_json_dict()
        self.control = httpx.Client(base_url=f"{self.info['endpoint']}/_sim", timeout=60.0)

    def prepare(self) -> None:
        self.control.post("/reset", json={"seed": SEED, "images": self.images}).raise_for_status()

    def restart(self) -> None:
        raise RuntimeError("the embedded simulator is not restarted; use a ProcessWorld")

    def close(self) -> None:
        self.control.close()
        self.simulator.stop()


class ProcessWorld:
    """``ims-nb sim --state PATH`` in a subprocess; ``restart`` kills it (SIGKILL) and starts it on the same port."""

    def __init__(self, images: int, folder: Path) -> None:
        self.folder = folder
        self.argv = [sys.executable, "-m", "ims_nb", "sim", "--seed", str(SEED), "--images", str(images),
                     "--manual-clock", "--state", str(folder / "sim-state.sqlite")]  # fmt: skip
        self.restarts = 0
        self.process, self.info = self._start(0)
        self.port = urlsplit(self.info["endpoint"]).port
        self.control = httpx.Client(base_url=f"{self.info['endpoint']}/_sim", timeout=60.0)

    def _start(self, port: int) -> tuple[subprocess.Popen[str], dict[str, str]]:
        with (self.folder / "sim.err").open("a") as errors:
            process = subprocess.Popen([*self.argv, "--port", str(port)], stdout=subprocess.PIPE, stderr=errors,
                                       text=True)  # fmt: skip
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line:
            process.wait(timeout=30)
            raise RuntimeError(f"ims-nb sim did not start: {(self.folder / 'sim.err').read_text()[-500:]}")
        return process, json.loads(line)

    def prepare(self) -> None:
        """A new process world starts at the seed: nothing to reset."""

    def restart(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)
        self.process, info = self._start(self.port or 0)
        if info["endpoint"] != self.info["endpoint"]:
            raise RuntimeError(f"the simulator came back at {info['endpoint']}, not {self.info['endpoint']}")
        self.restarts += 1

    def close(self) -> None:
        self.control.close()
        self.process.terminate()
        self.process.communicate(timeout=30)


World = EmbeddedWorld | ProcessWorld


@contextlib.contextmanager
def world_for(scenario: Scenario, embedded: EmbeddedWorld, images: int, folder: Path) -> Iterator[World]:
    """The embedded world, or for the restart scenario a new simulator process with a state file."""
    if scenario.event != "restart":
        yield embedded
        return
    process = ProcessWorld(images, folder)
    try:
        yield process
    finally:
        process.close()
