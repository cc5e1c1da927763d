"""The simulator's request counter: ``GET /_sim/requests`` counts service requests per method and route."""

from __future__ import annotations

import httpx
import pytest

from ims_nb.sim import api
from ims_nb.sim.counter import UNROUTED, gateway_route, route_template

JOB = "GET /v1/cloudimages/job/{job_id}"


def test_requests_are_counted_per_method_and_route(control: httpx.Client, ims: httpx.Client, obs: httpx.Client) -> None:
    assert control.get("/requests").json()["requests"] == {}
    ims.get("/v2/cloudimages", params={"limit": 1})
    for job_id in ("a", "b", "c"):
        ims.get(f"/v1/cloudimages/job/{job_id}")
    ims.get("/v9/nowhere")
    obs.head("/ims-nb-demo-exports/some/key.qcow2")
    obs.get("/ims-nb-demo-exports")
    counts = control.get("/requests").json()["requests"]
    assert counts == {
        "GET /v2/cloudimages": 1,
        JOB: 3,
        f"GET {UNROUTED}": 1,
        "HEAD obs:/{bucket}/{key}": 1,
        "GET obs:/{bucket}": 1,
    }


def test_faulted_requests_count_and_the_control_plane_does_not(control: httpx.Client, ims: httpx.Client) -> None:
    control.post("/faults", json={"kind": "response", "path": "/job/", "status": 503, "body": "{}"})
    assert ims.get("/v1/cloudimages/job/x").status_code == 503
    control.get("/state")
    assert control.get("/requests").json()["requests"] == {JOB: 1}


def test_reset_clears_the_counts(control: httpx.Client, ims: httpx.Client) -> None:
    ims.get("/v1/cloudimages/job/x")
    control.post("/reset", json={})
    assert control.get("/requests").json()["requests"] == {}


@pytest.mark.parametrize("route", api.ROUTES, ids=lambda r: f"{r.method} {r.pattern.pattern}")
def test_every_route_has_a_readable_template(route: api.Route) -> None:
    template = route_template(route.pattern.pattern)
    assert template.startswith("/") and "(" not in template and "?" not in template
    path = template.replace("{", "").replace("}", "")
    assert gateway_route(route.method, path) == f"{route.method} {template}"
