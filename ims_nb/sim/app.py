"""The simulator's ASGI application: faults, body limits, and dispatch to IMS/IAM, OBS or control."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import unquote

from starlette.responses import Response

from ims_nb.signing import parse_query
from ims_nb.sim import api, control, obs
from ims_nb.sim.backend import SimBackend
from ims_nb.sim.counter import RequestCounter, gateway_route, obs_route
from ims_nb.sim.errors import gateway_error, obs_error
from ims_nb.sim.faults import Fault, FaultPlan
from ims_nb.sim.gateway import Gateway, SignedRequest
from ims_nb.sim.responses import error_response, new_request_id

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

MAX_BODY_BYTES = 12 * 1024 * 1024  # the gateway's limit (413 APIGW.0201 beyond it)
log = logging.getLogger("ims_nb.sim")


class BodyTooLarge(Exception):
    pass


class Simulation:
    """One simulated cloud: backend state, gateway, faults, and the ASGI entry point."""

    def __init__(self, backend: SimBackend, *, real_time: Callable[[], float] = time.time) -> None:
        self.backend: SimBackend = backend
        self.gateway: Gateway = Gateway(backend, real_time)
        self.faults: FaultPlan = FaultPlan()
        self.real_time = real_time
        self.latency = 0.0  # seconds added to every service request (not the control plane's): /_sim/latency
        #: The service requests received, per method and route: ``GET /_sim/requests``.
        self.requests: RequestCounter = RequestCounter()
        #: Every region's simulation by region, this one included (``estate.build_estate`` shares one map).
        self.regions: dict[str, Simulation] = {backend.region: self}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        request_id = new_request_id()
        method, path = scope["method"], scope["path"]
        headers = _headers(scope)
        client = scope.get("client")
        is_obs = not path.startswith("/_sim/") and self._is_obs(path, scope, headers)
        try:
            body = await _read_body(receive, headers)
        except BodyTooLarge:
            error = gateway_error("APIGW.0201", "Request entity too large.", 413)
            if is_obs:
                error = obs_error(
                    400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed object size."
                )
            await error_response(error, request_id)(scope, receive, send)
            return
        if not path.startswith("/_sim/"):
            self.requests.count(self._route_key(method, path, headers, is_obs))
            if self.latency > 0:
                await asyncio.sleep(self.latency)
            fault = self.faults.take(method, path)
            if fault is not None and await self._apply_fault(fault, scope, receive, send, request_id, is_obs):
                return
        try:
            if path.startswith("/_sim/"):
                response = control.handle(self, method, path, client[0] if client else None, body, request_id)
            else:
                response = self._dispatch(scope, method, headers, body, request_id, is_obs)
        except Exception:  # a simulator bug: answer like the service would, and say so in the log
            log.exception("simulator error on %s %s", method, path)
            response = error_response(
                obs_error(500, "InternalError", "We encountered an internal error. Please try again.")
                if is_obs
                else gateway_error("APIGW.0601", "Internal server error.", 500),
                request_id,
            )
        await response(scope, receive, send)

    def _route_key(self, method: str, path: str, headers: dict[str, str], is_obs: bool) -> str:
        if is_obs:
            return obs_route(method, path, headers.get("host", ""), self.backend.buckets)
        return gateway_route(method, path)

    def _is_obs(self, path: str, scope: Scope, headers: dict[str, str]) -> bool:
        authorization = headers.get("authorization", "")
        if authorization.startswith(("OBS ", "AWS ")):
            return True
        if authorization.startswith("SDK-HMAC-SHA256") or "x-auth-token" in headers:
            return False
        if "apiversion" in scope.get("query_string", b"").decode("latin-1"):
            return True
        first = path.lstrip("/").split("/", 1)[0]
        return first not in api.API_PREFIXES and first != ""

    def _dispatch(
        self, scope: Scope, method: str, headers: dict[str, str], body: bytes, request_id: str, is_obs: bool
    ) -> Response:
        raw_path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
        raw_query = scope.get("query_string", b"").decode("latin-1")
        if is_obs:
            bucket, key, path_style = obs.split_target(unquote(raw_path), headers.get("host", ""), self.backend.buckets)
            # OBS reads its query form-encoded: '+' is a space (esdk-obs-python always sends %2B for '+')
            query = parse_query(raw_query.replace("+", "%20"))
            request = obs.ObsRequest(method, bucket, key, query, headers, path_style, request_id, body)
            with self.backend.lock:
                return obs.handle(self.backend, request, self.real_time())
        signed = SignedRequest(method, raw_path, raw_query, headers, body)
        with self.backend.lock:
            return api.handle(self.backend, self.gateway, signed, request_id)

    async def _apply_fault(
        self, fault: Fault, scope: Scope, receive: Receive, send: Send, request_id: str, is_obs: bool
    ) -> bool:
        """Carry out a fault; True when it answered (or dropped) the request itself."""
        if fault.kind == "latency":
            await asyncio.sleep(fault.delay)
            return False
        if fault.kind == "drop":
            _abort_connection(send)
            return True
        if fault.kind == "throttle":
            error = gateway_error(
                "APIGW.0308", "The throttling threshold has been reached: policy user over ratelimit,limit:10", 429
            )
            await error_response(error, request_id)(scope, receive, send)
            return True
        headers = {"X-Request-Id": request_id, **fault.headers}
        response = Response(
            fault.body,
            status_code=fault.status,
            headers=headers,
            media_type=fault.headers.get("Content-Type", "application/json"),
        )
        await response(scope, receive, send)
        return True


def _headers(scope: Scope) -> dict[str, str]:
    merged: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers", []):
        name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
        merged[name] = f"{merged[name]},{value}" if name in merged else value
    return merged


async def _read_body(receive: Receive, headers: dict[str, str]) -> bytes:
    declared = headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _abort_connection(send: Send) -> None:
    """Close the TCP connection without an answer (uvicorn's cycle exposes its transport)."""
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is None:
        raise RuntimeError("the server does not expose its transport; cannot drop the connection")
    transport.abort()


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
