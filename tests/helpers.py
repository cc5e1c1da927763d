"""Helpers the tests import by name (fixtures live in the conftest of each level)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pandas as pd

from ims_nb.client import ImsClient
from ims_nb.exports.plan import plan_exports
from ims_nb.rules import SIMULATOR_PROFILE

#: The region's Standard bucket the export tests write to.
BUCKET = "ims-exports-cn-north-4"
#: The path of the image listing (``GET /v2/cloudimages``), as a regex for ``RequestLog.matching``.
LIST = "^/v2/cloudimages$"


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


def stall_job(control: httpx.Client, job_id: str, *, count: int = 8) -> None:
    """The simulator answers "RUNNING, 42 %" to the next ``count`` polls of ``job_id``: a job stuck at 42 %."""
    stuck = {"status": "RUNNING", "job_id": job_id, "job_type": "imsNativeExportImageJob", "begin_time": None,
             "end_time": None, "entities": {"process_percent": 42.0}}  # fmt: skip
    fault = {"kind": "response", "method": "GET", "path": f"/cloudimages/job/{job_id}$", "status": 200,
             "body": json.dumps(stuck), "count": count}  # fmt: skip
    control.post("/faults", json=fault).raise_for_status()


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


def exportable_plan(client: ImsClient, *, key_template: str, bucket: str = BUCKET) -> pd.DataFrame:
    """The exportable rows of a plan of the private images (normal exports, qcow2), in listing order from 0."""
    plan = plan_exports(client.images(imagetype="private"), bucket=bucket, key_template=key_template,
                        quick=False, profile=SIMULATOR_PROFILE)  # fmt: skip
    return plan[plan["exportable"].fillna(False).astype(bool)].reset_index(drop=True)


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
