"""Injected faults: canned responses, latency, dropped connections and throttling for matching requests."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from typing import Any

KINDS = ("response", "latency", "drop", "throttle")
#: The longest period ``every`` may give a rule.
MAX_EVERY = 1_000_000


@dataclass
class Fault:
    """One rule: for the next ``count`` requests matching ``method`` and ``path`` (a regex), do ``kind``.

    ``response`` answers ``status`` with ``body`` (raw text, sent as is: malformed JSON is fine);
    ``latency`` delays the real answer by ``delay`` seconds; ``drop`` closes the connection without
    answering; ``throttle`` answers 429 APIGW.0308. ``count`` None means until cleared.

    ``every`` and ``burst`` spread the rule over a run: of each ``every`` matching requests, the last
    ``burst`` are taken (``every=20``: the 20th, the 40th, ...) and the others pass, to later rules or to
    the service. The defaults (1 and 1) take every matching request; ``hits`` counts the requests taken,
    ``seen`` those that matched.
    """

    kind: str
    method: str | None = None
    path: str = ".*"
    count: int | None = 1
    status: int = 500
    body: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    every: int = 1
    burst: int = 1
    hits: int = 0
    seen: int = 0

    def __post_init__(self) -> None:
        _check_types(self)
        if self.kind not in KINDS:
            raise ValueError(f"fault kind must be one of {', '.join(KINDS)}, not {self.kind!r}")
        if self.count is not None and self.count < 1:
            raise ValueError(f"fault count must be at least 1, not {self.count}")
        if not 200 <= self.status <= 599:  # a 1xx is not a final answer: the server could not send it
            raise ValueError(f"fault status must be an HTTP status from 200 to 599, not {self.status}")
        if self.status in (204, 304) and self.body:
            raise ValueError(f"a {self.status} answer has no body")
        if not 0 <= self.delay <= 600:
            raise ValueError(f"fault delay must be 0 to 600 seconds, not {self.delay}")
        if not 1 <= self.burst <= self.every <= MAX_EVERY:
            raise ValueError(f"need 1 <= burst <= every <= {MAX_EVERY}, not burst {self.burst} and every {self.every}")
        try:
            self._pattern = re.compile(self.path)
        except (re.error, TypeError) as exc:
            raise ValueError(f"fault path must be a regular expression: {exc}") from None

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method.upper() == method) and bool(self._pattern.search(path))

    def takes(self) -> bool:
        """Count one matching request; True when it falls in this rule's burst (and is taken)."""
        self.seen += 1
        if (self.seen - 1) % self.every < self.every - self.burst:
            return False
        self.hits += 1
        return True

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "method": self.method,
            "path": self.path,
            "count": self.count,
            "status": self.status,
            "delay": self.delay,
            "every": self.every,
            "burst": self.burst,
            "hits": self.hits,
            "seen": self.seen,
        }


_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_HEADER_VALUE = re.compile(r"(?:[\x21-\x7e\x80-\xff]+(?:[ \t]+[\x21-\x7e\x80-\xff]+)*)?")


def _check_types(fault: Fault) -> None:
    """A rule comes from JSON: refuse (ValueError) any field the server could not apply as given."""

    def is_int(value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool)

    problems = [
        name
        for name, ok in (
            ("kind", isinstance(fault.kind, str)),
            ("method", fault.method is None or isinstance(fault.method, str)),
            ("path", isinstance(fault.path, str)),
            ("count", fault.count is None or is_int(fault.count)),
            ("status", is_int(fault.status)),
            ("body", isinstance(fault.body, str)),
            ("delay", isinstance(fault.delay, (int, float)) and not isinstance(fault.delay, bool)),
            ("every", is_int(fault.every)),
            ("burst", is_int(fault.burst)),
        )
        if not ok
    ]
    if problems:
        raise ValueError(f"wrong type for fault field(s): {', '.join(problems)}")
    headers = fault.headers
    if not isinstance(headers, dict) or not all(
        isinstance(name, str)
        and isinstance(value, str)
        and _HEADER_NAME.fullmatch(name)
        and _HEADER_VALUE.fullmatch(value)
        and name.lower() not in ("content-length", "transfer-encoding")
        for name, value in headers.items()
    ):
        raise ValueError(
            "fault headers must map header names to single-line Latin-1 values "
            "(Content-Length and Transfer-Encoding are the server's)"
        )


class FaultPlan:
    """The active faults; the first live rule that matches a request takes it."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def take(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path) and fault.takes():
                    if fault.count is not None and fault.hits >= fault.count:
                        self._faults.remove(fault)
                    return fault
        return None

    def describe(self) -> list[dict[str, Any]]:
        with self._lock:
            return [fault.describe() for fault in self._faults]
