"""What the soak measures: requests by kind and answer, each process's memory and CPU, the simulated clock."""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

import ims_nb

POLL_PREFIX = "/v1/cloudimages/job/"
MiB = 1024**2


# --- counting requests (counters only: the soak measures memory) -------------------------------------


class CountingTransport(httpx.BaseTransport):
    """Passes every request on to ``inner`` and counts it by kind and answer; keeps a few failures as examples."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.kinds: Counter[str] = Counter()
        self.answers: Counter[str] = Counter()  # "GET 200", "HEAD 404", "POST ConnectError", ...
        self.failed = 0
        self.examples: list[str] = []
        self._lock = threading.Lock()

    @staticmethod
    def classify(request: httpx.Request) -> str:
        """``poll`` (a job's status), ``verify`` or ``lookup`` (HEAD of an object or bucket), ``export``, ``other``."""
        path, method = request.url.path, request.method
        parts = path.strip("/").split("/")
        if method == "GET" and (path.startswith(POLL_PREFIX) or len(parts) == 4 and parts[2] == "jobs"):
            return "poll"
        if method == "POST" and path.endswith("/file"):
            return "export"
        if method == "HEAD":
            return "head"
        return "other"

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        kind = self.classify(request)
        try:
            response = self.inner.handle_request(request)
        except Exception as exc:
            self._count(request, kind, type(exc).__name__, failed=True)
            raise
        status = response.status_code
        failed = status >= 400 and not (request.method == "HEAD" and status == 404)
        self._count(request, kind, str(status), failed=failed)
        return response

    def _count(self, request: httpx.Request, kind: str, answer: str, *, failed: bool) -> None:
        with self._lock:
            self.kinds[kind] += 1
            self.answers[f"{request.method} {answer}"] += 1
            if failed:
                self.failed += 1
                if len(self.examples) < 10:
                    self.examples.append(f"{request.method} {request.url.path} -> {answer}")

    def close(self) -> None:
        self.inner.close()

    def summary(self) -> dict[str, Any]:
        with self._lock:
            return {"total": sum(self.kinds.values()), "by_kind": dict(self.kinds), "by_answer": dict(self.answers),
                    "failed": self.failed, "failed_examples": list(self.examples)}  # fmt: skip


def connect(info: dict[str, str], transport: httpx.BaseTransport) -> Any:
    return ims_nb.connect(info["region"], ak=info["ak"], sk=info["sk"], project_id=info["project_id"],
                          endpoint=info["endpoint"], transport=transport)  # fmt: skip


@dataclass(frozen=True)
class SimClock:
    """The simulator's clock, read once (``/_sim/clock``) and then computed locally from real time."""

    anchor_sim: float
    anchor_real: float
    scale: float

    @classmethod
    def of(cls, endpoint: str, scale: float) -> SimClock:
        before = time.time()
        answer = httpx.get(f"{endpoint}/_sim/clock", timeout=30).raise_for_status().json()
        return cls(answer["timestamp"], (before + time.time()) / 2, scale)

    def at(self, real: float) -> float:
        """The simulated time at POSIX time ``real``."""
        return self.anchor_sim + (real - self.anchor_real) * self.scale

    def __call__(self) -> float:
        return self.at(time.time())


# --- memory --------------------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float | None:
    """User plus system CPU time a process has used (``/proc/<pid>/stat``), or None when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_bytes(pid: int) -> int | None:
    """The resident set of a process (``VmRSS``), or None when it is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        return None
    return None


@dataclass
class Sampler:
    """Samples the RSS of named processes every ``every`` real seconds in a thread, with the simulated time."""

    pids: dict[str, int]
    every: float
    sim_time: SimClock
    samples: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="soak-sampler", daemon=True)

    def sample(self) -> dict[str, Any]:
        row = {"real": time.time(), "sim": self.sim_time()} | {name: rss_bytes(pid) for name, pid in self.pids.items()}
        row["cpu"] = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        self.samples.append(row)
        return row

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.sample()

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()


def memory(samples: Sequence[dict[str, Any]], name: str) -> dict[str, Any]:
    """Start, end, peak and the growth over the second half of the run, in MiB, of one process."""
    values = [s[name] for s in samples if s.get(name)]
    if not values:
        return {"samples": 0}
    mid = values[len(values) // 2]
    return {"samples": len(values), "start_mib": values[0] / MiB, "end_mib": values[-1] / MiB,
            "peak_mib": max(values) / MiB, "min_mib": min(values) / MiB, "mid_mib": mid / MiB,
            "growth_mib": (values[-1] - values[0]) / MiB,
            "second_half_growth_mib": (values[-1] - mid) / MiB}  # fmt: skip


def flat(mem: dict[str, Any], *, ratio: float = 1.5, slack_mib: float = 50.0) -> bool:
    """The bound the soak holds memory to: end RSS < start x ``ratio`` + ``slack_mib``."""
    return bool(mem.get("samples")) and mem["end_mib"] < mem["start_mib"] * ratio + slack_mib
