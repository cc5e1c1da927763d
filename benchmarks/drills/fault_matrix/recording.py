"""The fault matrix's client side: every request recorded, events set off by the n-th request of a kind."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from benchmarks.drills.fault_matrix.scenarios import PHASES


def kind_of(request: httpx.Request) -> str:
    """list, export, poll, login, obs (bucket and object HEADs), or other."""
    method, path = request.method, request.url.path
    if method == "GET" and path == "/v2/cloudimages":
        return "list"
    if method == "POST" and path.endswith("/file"):
        return "export"
    if method == "GET" and ("/cloudimages/job/" in path or "/jobs/" in path):
        return "poll"
    if method == "POST" and path == "/v3/auth/tokens":
        return "login"
    if method == "HEAD":
        return "obs"
    return "other"


@dataclass(frozen=True)
class Entry:
    phase: str
    kind: str
    path: str
    resent: bool  # the same request object sent again: a retry, or an auth flow's replay


@dataclass
class Trigger:
    """Run ``action`` before the ``nth`` first send of a ``kind`` of request in ``phase``."""

    phase: str
    kind: str
    nth: int
    action: Callable[[], None]
    fired: bool = False


class Recorder(httpx.BaseTransport):
    """Notes every request, then sends it through ``inner``; runs due triggers first, holding other requests.

    Requests already on the wire when a trigger fires (a restart kills the server) meet their fate; those that
    arrive while it runs wait for it to end, as a retry would wait out a restart.
    """

    def __init__(self, inner: httpx.BaseTransport | None = None) -> None:
        self.inner = inner or httpx.HTTPTransport()
        self.phase = "setup"
        self.entries: list[Entry] = []
        self.triggers: list[Trigger] = []
        self._sent: dict[int, httpx.Request] = {}  # keeps each request alive, so that ids are not reused
        self._firsts: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()
        self._open = threading.Event()
        self._open.set()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self._open.wait()
        kind = kind_of(request)
        with self._lock:
            resent = id(request) in self._sent
            self._sent[id(request)] = request
            self.entries.append(Entry(self.phase, kind, request.url.path, resent))
            self._firsts[(self.phase, kind)] += not resent
            due = [t for t in self.triggers if not t.fired and (t.phase, t.kind) == (self.phase, kind)
                   and self._firsts[(self.phase, kind)] >= t.nth]  # fmt: skip
            for trigger in due:
                trigger.fired = True
        if due:
            self._open.clear()
            try:
                for trigger in due:
                    trigger.action()
            finally:
                self._open.set()
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


def tally(entries: Sequence[Entry]) -> dict[str, Any]:
    """Requests, retries (repeated request objects), re-sent exports (a new POST for an image already POSTed)."""
    exports = Counter(e.path for e in entries if e.kind == "export" and not e.resent)
    return {
        "requests": len(entries),
        "retries": sum(e.resent for e in entries),
        "resent_exports": sum(n - 1 for n in exports.values()),
        "logins": sum(e.kind == "login" for e in entries),
        "by_phase": {p: n for p in PHASES if (n := sum(e.phase == p for e in entries))},
        "by_kind": dict(Counter(e.kind for e in entries)),
    }


class ObsThroughKeys:
    """A password-login client whose OBS calls go through an AK/SK client of the same user.

    An IAM token cannot sign OBS requests (``ImsClient`` raises ``ConfigError`` for them), so planning and
    verifying need the user's keys; everything IMS goes through the token.
    """

    OBS_METHODS = frozenset({"bucket", "buckets", "object_exists", "object_size"})

    def __init__(self, ims: Any, obs: Any) -> None:
        self.ims, self.obs = ims, obs

    def __getattr__(self, name: str) -> Any:
        return getattr(self.obs if name in self.OBS_METHODS else self.ims, name)
