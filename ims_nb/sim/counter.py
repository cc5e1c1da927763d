"""Counts of the service requests a simulation received, per method and route (``GET /_sim/requests``)."""

from __future__ import annotations

import re
import threading
from collections import Counter

from ims_nb.sim import api
from ims_nb.sim.backend import Bucket
from ims_nb.sim.obs import split_target

#: The key of a gateway request that matches no route (answered 404 by the gateway).
UNROUTED = "(unrouted)"
_GROUP = re.compile(r"\(\?P<(\w+)>[^)]*\)")


def route_template(pattern: str) -> str:
    """A route's regular expression as people write it: ``^/v1/cloudimages/job/(?P<job_id>[^/]+)/?$`` ->
    ``/v1/cloudimages/job/{job_id}``."""
    return _GROUP.sub(r"{\1}", pattern).removeprefix("^").removesuffix("$").removesuffix("/?")


def gateway_route(method: str, path: str) -> str:
    """``METHOD /template`` of an IMS or IAM request (the route that will answer it), or ``METHOD (unrouted)``."""
    for route in api.ROUTES:
        if route.method == method and route.pattern.match(path):
            return f"{method} {route_template(route.pattern.pattern)}"
    return f"{method} {UNROUTED}"


def obs_route(method: str, path: str, host: str, buckets: dict[str, Bucket]) -> str:
    """``METHOD obs:/{bucket}/{key}`` for an object, ``METHOD obs:/{bucket}`` for a bucket, ``METHOD obs:/``
    (from the decoded path and the Host header: path or virtual-host style)."""
    bucket, key, _ = split_target(path, host, buckets)
    if key:
        return f"{method} obs:/{{bucket}}/{{key}}"
    return f"{method} obs:/{{bucket}}" if bucket else f"{method} obs:/"


class RequestCounter:
    """How many service requests arrived, by route key; the control plane's own requests are not counted.

    A request is counted when it arrives, before any injected fault answers it: a request sent is a request
    the service would have paid for.
    """

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def count(self, key: str) -> None:
        with self._lock:
            self._counts[key] += 1

    def snapshot(self) -> dict[str, int]:
        """The counts so far, by route key (sorted)."""
        with self._lock:
            return dict(sorted(self._counts.items()))

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()
