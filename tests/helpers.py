"""Helpers the tests import by name (fixtures live in the conftest of each level)."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx


class RequestLog:
    """The requests a client sent, in order; ``clock`` (when set) stamps each one."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.times: list[float] = []
        self.clock: Callable[[], float] | None = None

    def add(self, request: httpx.Request) -> None:
        # a copy: an auth flow may change the headers of the same request object and send it again
        self.requests.append(httpx.Request(request.method, request.url, headers=request.headers.copy()))
        self.times.append(self.clock() if self.clock is not None else 0.0)

    def matching(self, method: str | None = None, path: str = "") -> list[httpx.Request]:
        """Requests with this method whose path matches the regex ``path``."""
        return [r for r in self.requests if method in (None, r.method) and re.search(path, r.url.path)]

    def clear(self) -> None:
        self.requests.clear()
        self.times.clear()

    def __len__(self) -> int:
        return len(self.requests)


class RecordingTransport(httpx.BaseTransport):
    """Records each request into a ``RequestLog``, then sends it for real."""

    def __init__(self, log: RequestLog, inner: httpx.BaseTransport | None = None) -> None:
        self.log = log
        self.inner = inner or httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.log.add(request)
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


class AsyncRecordingTransport(httpx.AsyncBaseTransport):
    """The async twin of ``RecordingTransport`` (wraps an ``ASGITransport`` or a real one)."""

    def __init__(self, log: RequestLog, inner: httpx.AsyncBaseTransport | None = None) -> None:
        self.log = log
        self.inner = inner or httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.log.add(request)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


class SimTime:
    """A test clock that also moves the simulator's manual clock: ``sleep`` advances both, instantly."""

    def __init__(self, control: httpx.Client) -> None:
        self._control = control
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0, seconds
        self.sleeps.append(seconds)
        if seconds > 0:
            self.now += seconds
            self._control.post("/clock", json={"advance": seconds}).raise_for_status()

    async def async_sleep(self, seconds: float) -> None:
        self.sleep(seconds)


#: Platforms whose derived images the simulator refuses to export (its strict region profile).
RESTRICTED_PLATFORMS = ("Windows", "SUSE", "Red Hat", "RedHat", "Ubuntu", "Oracle Linux")


def is_exportable(image: dict[str, Any], project_id: str) -> bool:
    """Whether the service exports this image normally and fast (read from its listing record)."""
    size = int(image.get("__image_size") or 0)
    derived = bool(image.get("__originalimagename"))
    return (
        image.get("owner") == project_id
        and image.get("__imagetype") == "private"
        and image.get("status") == "active"
        and image.get("__whole_image") is not True
        and image.get("virtual_env_type") != "IsoImage"
        and not image.get("__productcode")
        and not (derived and image.get("__platform") in RESTRICTED_PLATFORMS)
        and not image.get("__system__cmkid")
        and size < 128 * 1024**3
    )


@contextmanager
def cli_simulator(*options: str) -> Iterator[str]:
    """``ims-nb sim --port 0 --seed 0 OPTIONS`` in a subprocess; yields its JSON line, stops it after."""
    process = subprocess.Popen(
        [sys.executable, "-m", "ims_nb", "sim", "--port", "0", "--seed", "0", *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        yield process.stdout.readline().strip()
    finally:
        process.terminate()
        process.communicate(timeout=15)
