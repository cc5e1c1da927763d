"""The control plane under ``/_sim/`` (loopback only): reset, clock, faults, throttling, latency, state, requests.

With several regions, every endpoint has its own control plane. Reset, the clock (one clock for all), token
expiry and lockouts act on every region at once; faults, throttling and latency act on the region whose endpoint
is called, or on the one a ``"region"`` field names (``POST /_sim/faults {"kind": "response", "region":
"ap-southeast-1"}``, ``POST /_sim/latency {"seconds": 0.1, "region": ...}``); state and credentials describe the
endpoint's region (credentials list every project).
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import math
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from starlette.responses import Response

from ims_nb.sim.clock import iso_millis, iso_seconds
from ims_nb.sim.errors import SimError, gateway_error
from ims_nb.sim.faults import Fault
from ims_nb.sim.responses import error_response, json_response

if TYPE_CHECKING:
    from ims_nb.sim.app import Simulation

Action = Callable[["Simulation", dict[str, Any]], Any]


def _bad(message: str) -> SimError:
    return gateway_error("SIM.0400", message, 400)


def is_loopback(host: str | None) -> bool:
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _reset(sim: Simulation, body: dict[str, Any]) -> Any:
    seed, images = body.get("seed"), body.get("images")
    for name, value in (("seed", seed), ("images", images)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            raise _bad(f"{name} must be a non-negative integer")
    for each in sim.regions.values():  # the first region (which owns the IAM) first
        each.faults.clear()
        each.requests.reset()
        each.gateway.reset_lockouts()
        each.backend.reset(seed=seed, images=images)
    return _state(sim, {})


def _clock(sim: Simulation, body: dict[str, Any]) -> Any:
    clock = sim.backend.clock
    advance, scale, manual = body.get("advance"), body.get("scale"), body.get("manual")
    try:
        if scale is not None or manual is not None:
            if manual is not None and not isinstance(manual, bool):
                raise ValueError("manual must be true or false")
            clock.configure(scale=None if scale is None else _number("scale", scale, MAX_CLOCK_SCALE), manual=manual)
        if advance is not None:
            clock.advance(_number("advance", advance, MAX_CLOCK_TIME - clock.now()))
    except (TypeError, ValueError) as exc:
        raise _bad(f"invalid clock change: {exc}") from None
    for each in sim.regions.values():
        each.backend.save_clock()
    return {"now": iso_millis(clock.now()), "timestamp": clock.now(), "manual": clock.manual, "scale": clock.scale}


#: Bounds that keep the simulated clock representable (dates stay before the year 9000).
MAX_CLOCK_TIME = datetime(9000, 1, 1, tzinfo=UTC).timestamp()
MAX_CLOCK_SCALE = 1e6


def _number(name: str, value: Any, high: float) -> float:
    """A finite number from 0 to ``high`` (JSON numbers or numeric strings), else ValueError."""
    number = float(value)
    if not math.isfinite(number) or not 0 <= number <= high:
        raise ValueError(f"{name} must be a number from 0 to {high:g}, not {value!r}")
    return number


def _target(sim: Simulation, body: dict[str, Any]) -> Simulation:
    """The simulation of the region ``body`` names in ``"region"`` (popped), else ``sim``."""
    region = body.pop("region", None)
    if region is None:
        return sim
    if not isinstance(region, str) or region not in sim.regions:
        raise _bad(f"region must be one of {', '.join(sim.regions)}, not {region!r}")
    return sim.regions[region]


def _latency(sim: Simulation, body: dict[str, Any]) -> Any:
    target = _target(sim, body)
    try:
        target.latency = _number("seconds", body.get("seconds", 0), 600)
    except (TypeError, ValueError) as exc:
        raise _bad(f"invalid latency: {exc}") from None
    return {"region": target.backend.region, "seconds": target.latency}


def _add_fault(sim: Simulation, body: dict[str, Any]) -> Any:
    sim = _target(sim, body)
    allowed = {"kind", "method", "path", "count", "status", "body", "headers", "delay", "every", "burst"}
    unknown = set(body) - allowed
    if unknown:
        raise _bad(f"unknown fault field(s): {', '.join(sorted(unknown))}")
    try:
        fault = Fault(**body)
    except (TypeError, ValueError) as exc:
        raise _bad(f"invalid fault: {exc}") from None
    sim.faults.add(fault)
    return {"faults": sim.faults.describe()}


def _clear_faults(sim: Simulation, body: dict[str, Any]) -> Any:
    _target(sim, body).faults.clear()
    return {"faults": []}


def _throttle(sim: Simulation, body: dict[str, Any]) -> Any:
    sim = _target(sim, body)
    rate, burst = body.get("rate"), body.get("burst")
    try:
        sim.gateway.set_throttle(
            None if rate is None else _number("rate", rate, math.inf),
            None if burst is None else _number("burst", burst, math.inf),
        )
    except (TypeError, ValueError) as exc:
        raise _bad(f"invalid throttle: {exc}") from None
    return {"rate": rate, "burst": burst}


def _expire_tokens(sim: Simulation, body: dict[str, Any]) -> Any:
    return {"expired": max(each.backend.expire_tokens() for each in sim.regions.values())}


def _reset_lockouts(sim: Simulation, body: dict[str, Any]) -> Any:
    for each in sim.regions.values():
        each.gateway.reset_lockouts()
    return {"lockouts": 0}


def _add_object(sim: Simulation, body: dict[str, Any]) -> Any:
    bucket, key, size = body.get("bucket"), body.get("key"), body.get("size", 0)
    if (
        not isinstance(bucket, str)
        or bucket not in sim.backend.buckets
        or not isinstance(key, str)
        or not key
        or not isinstance(size, int)
        or isinstance(size, bool)
        or size < 0
    ):
        raise _bad("an object needs an existing bucket, a non-empty key and a non-negative integer size")
    obj = {
        "bucket": bucket,
        "key": key,
        "size": size,
        "created": iso_seconds(sim.backend.clock.now()),
        "etag": hashlib.md5(f"{bucket}/{key}".encode()).hexdigest(),
    }  # noqa: S324 - an ETag
    with sim.backend.lock:
        sim.backend.objects[(bucket, key)] = obj
        if sim.backend.store is not None:
            sim.backend.store.put_object(obj)
    return obj


def _state(sim: Simulation, body: dict[str, Any]) -> Any:
    return sim.backend.dump() | {"faults": sim.faults.describe(), "latency": sim.latency, "regions": list(sim.regions)}


def _credentials(sim: Simulation, body: dict[str, Any]) -> Any:
    backend = sim.backend
    return {
        "region": backend.region,
        "project_id": backend.project_id,
        "domain_id": backend.domain_id,
        "domain_name": backend.domain_name,
        "users": [asdict(a) for a in backend.accounts.values()],
        "projects": [asdict(p) for p in backend.iam.projects],
    }


ACTIONS: dict[tuple[str, str], Action] = {
    ("POST", "/_sim/reset"): _reset,
    ("POST", "/_sim/clock"): _clock,
    ("GET", "/_sim/clock"): lambda sim, body: _clock(sim, {}),
    ("POST", "/_sim/faults"): _add_fault,
    ("GET", "/_sim/faults"): lambda sim, body: {"faults": sim.faults.describe()},
    ("DELETE", "/_sim/faults"): _clear_faults,
    ("POST", "/_sim/throttle"): _throttle,
    ("POST", "/_sim/latency"): _latency,
    ("POST", "/_sim/tokens/expire"): _expire_tokens,
    ("POST", "/_sim/lockouts/reset"): _reset_lockouts,
    ("POST", "/_sim/objects"): _add_object,
    ("GET", "/_sim/state"): _state,
    ("GET", "/_sim/requests"): lambda sim, body: {"region": sim.backend.region, "requests": sim.requests.snapshot()},
    ("GET", "/_sim/credentials"): _credentials,
    ("GET", "/_sim/health"): lambda sim, body: {"status": "ok"},
}


def handle(
    sim: Simulation, method: str, path: str, client_host: str | None, raw_body: bytes, request_id: str
) -> Response:
    try:
        if not is_loopback(client_host):
            raise gateway_error("SIM.0403", "The control plane answers loopback callers only.", 403)
        action = ACTIONS.get((method, path.rstrip("/")))
        if action is None:
            raise gateway_error("SIM.0404", f"No control-plane action {method} {path}.", 404)
        try:
            body = json.loads(raw_body) if raw_body.strip() else {}
        except (ValueError, RecursionError):  # RecursionError: nesting too deep
            raise _bad("the body must be JSON") from None
        if not isinstance(body, dict):
            raise _bad("the body must be a JSON object")
        with sim.backend.lock:
            return json_response(action(sim, body), request_id=request_id)
    except SimError as error:
        return error_response(error, request_id)
