"""The servers browser tests start (``ims-nb lab``, ``ims-nb app``) and how to wait for and stop them."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

TOKEN = "ims-nb-browser-tests"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """A server the tests started (``ims-nb lab`` or ``ims-nb app``) and what it announced."""

    process: subprocess.Popen[str]
    url: str
    sim: dict[str, str]
    ledger: Path
    folder: Path
    log: Path

    def sim_state(self) -> dict[str, Any]:
        return dict(httpx.get(f"{self.sim['endpoint']}/_sim/state", timeout=10).raise_for_status().json())


def wait_ready(url: str, process: subprocess.Popen[str], log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer in {timeout:.0f} s:\n{log.read_text()[-3000:]}")


def sim_line(log: Path, process: subprocess.Popen[str], timeout: float = 30.0) -> dict[str, str]:
    """The simulator's JSON line, which ``ims-nb lab``/``app`` pass to their child in ``$IMS_NB_SIM``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in log.read_text().splitlines():
            if line.startswith("ims-nb ") and "SIMULATOR at " in line:
                endpoint = line.split("SIMULATOR at ", 1)[1].split()[0]
                return {"endpoint": endpoint}
        if process.poll() is not None:
            break
        time.sleep(0.1)
    raise RuntimeError(f"no simulator line from the server:\n{log.read_text()[-3000:]}")


def stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def clean_env() -> dict[str, str]:
    """This environment without credentials or an outside simulator: the servers start their own."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("HUAWEICLOUD_SDK_", "IMS_NB_"))}
