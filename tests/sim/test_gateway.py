"""The simulator's gateway: signatures, clock skew, AK lockout, IAM tokens and throttling."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from ims_nb.client.auth import AkSkAuth, TokenAuth
from ims_nb.sim import Simulator

IMAGES = "/v2/cloudimages"


def _client(sim: Simulator, **auth_options: object) -> httpx.Client:
    info = sim.info
    options = {"project_id": info.project_id, **auth_options}
    secret = str(options.pop("sk", info.sk))
    access = str(options.pop("ak", info.ak))
    return httpx.Client(base_url=info.endpoint, auth=AkSkAuth(access, secret, **options))  # type: ignore[arg-type]


def _gateway_error(response: httpx.Response) -> tuple[int, str, str]:
    body = response.json()
    assert set(body) == {"error_code", "error_msg", "request_id"}
    assert body["request_id"] == response.headers["X-Request-Id"]
    return response.status_code, body["error_code"], body["error_msg"]


def test_a_correct_signature_is_accepted(ims: httpx.Client) -> None:
    response = ims.get(IMAGES, params={"limit": 1})
    assert response.status_code == 200
    assert len(response.json()["images"]) == 1


def test_missing_credentials_are_refused(fresh_sim: Simulator) -> None:
    status, code, message = _gateway_error(httpx.get(fresh_sim.endpoint + IMAGES))
    assert (status, code) == (401, "APIGW.0301")
    assert "x-auth-token not found" in message


def test_wrong_secret_and_unknown_ak_are_refused(fresh_sim: Simulator) -> None:
    with _client(fresh_sim, sk="not-the-secret") as client:
        assert _gateway_error(client.get(IMAGES))[:2] == (401, "APIGW.0301")
    with _client(fresh_sim, ak="AKUNKNOWN00000000000") as client:
        status, code, message = _gateway_error(client.get(IMAGES))
        assert (status, code) == (401, "APIGW.0301") and "ak not exist" in message


def test_a_tampered_request_does_not_verify(ims: httpx.Client) -> None:
    request = ims.build_request("GET", IMAGES, params={"limit": 1})
    signed = next(ims.auth.sync_auth_flow(request))  # type: ignore[union-attr]
    tampered = httpx.Request("GET", str(signed.url).replace("limit=1", "limit=2"), headers=signed.headers)
    assert _gateway_error(httpx.Client().send(tampered))[:2] == (401, "APIGW.0301")


@pytest.mark.parametrize("minutes", [-16, 16])
def test_clock_skew_over_fifteen_minutes_is_refused(fresh_sim: Simulator, minutes: int) -> None:
    skewed = datetime.now(UTC) + timedelta(minutes=minutes)
    with _client(fresh_sim, clock=lambda: skewed) as client:
        status, code, message = _gateway_error(client.get(IMAGES))
    assert (status, code) == (401, "APIGW.0301") and "15 minutes" in message


def test_skew_within_fifteen_minutes_is_accepted(fresh_sim: Simulator) -> None:
    skewed = datetime.now(UTC) - timedelta(minutes=14)
    with _client(fresh_sim, clock=lambda: skewed) as client:
        assert client.get(IMAGES, params={"limit": 1}).status_code == 200


def test_five_failures_in_a_row_lock_the_ak_for_five_minutes(fresh_sim: Simulator) -> None:
    gateway = fresh_sim.simulation.gateway
    with _client(fresh_sim, sk="wrong") as bad, _client(fresh_sim) as good:
        for _ in range(4):
            assert bad.get(IMAGES).status_code == 401
        assert good.get(IMAGES, params={"limit": 1}).status_code == 200  # a success resets the count
        for _ in range(5):
            assert "verify aksk signature fail" in _gateway_error(bad.get(IMAGES))[2]
        status, code, message = _gateway_error(good.get(IMAGES))
        assert (status, code) == (401, "APIGW.0301") and "reach the limit" in message
        real = gateway.real_time
        gateway.real_time = lambda: real() + 301
        try:
            assert good.get(IMAGES, params={"limit": 1}).status_code == 200
        finally:
            gateway.real_time = real


def test_project_header_is_required_and_checked(fresh_sim: Simulator) -> None:
    info = fresh_sim.info
    with httpx.Client(base_url=info.endpoint, auth=AkSkAuth(info.ak, info.sk)) as client:
        status, code, message = _gateway_error(client.get(IMAGES))
        assert (status, code) == (401, "APIGW.0301") and "X-Project-Id" in message
        assert client.get("/v3/projects", params={"name": info.region}).status_code == 200
    with _client(fresh_sim, project_id="f" * 32) as client:
        assert _gateway_error(client.get(IMAGES))[:2] == (403, "APIGW.0310")


def _password_body(sim: Simulator, password: str, scope: dict[str, object] | None = None) -> dict[str, object]:
    creds = httpx.get(f"{sim.endpoint}/_sim/credentials").json()
    user = creds["users"][0]
    auth: dict[str, object] = {
        "identity": {
            "methods": ["password"],
            "password": {
                "user": {"name": user["name"], "password": password, "domain": {"name": creds["domain_name"]}}
            },
        },
    }
    auth["scope"] = scope if scope is not None else {"project": {"name": creds["region"]}}
    return {"auth": auth}


def _operator_password(sim: Simulator) -> str:
    return str(httpx.get(f"{sim.endpoint}/_sim/credentials").json()["users"][0]["password"])


def test_password_login_gives_a_24h_token_that_authenticates(fresh_sim: Simulator) -> None:
    response = httpx.post(
        f"{fresh_sim.endpoint}/v3/auth/tokens", json=_password_body(fresh_sim, _operator_password(fresh_sim))
    )
    assert response.status_code == 201
    token = response.headers["X-Subject-Token"]
    body = response.json()["token"]
    issued = datetime.strptime(body["issued_at"], "%Y-%m-%dT%H:%M:%S.%fZ")
    expires = datetime.strptime(body["expires_at"], "%Y-%m-%dT%H:%M:%S.%fZ")
    assert expires - issued == timedelta(hours=24)
    assert body["project"]["id"] == fresh_sim.info.project_id
    with httpx.Client(base_url=fresh_sim.endpoint, auth=TokenAuth(token)) as client:
        assert client.get(IMAGES, params={"limit": 1}).status_code == 200
        httpx.post(f"{fresh_sim.endpoint}/_sim/tokens/expire").raise_for_status()
        status, code, message = _gateway_error(client.get(IMAGES))
        assert (status, code) == (401, "APIGW.0307") and "token expires" in message


def test_wrong_password_and_unknown_token_are_refused(fresh_sim: Simulator) -> None:
    response = httpx.post(f"{fresh_sim.endpoint}/v3/auth/tokens", json=_password_body(fresh_sim, "nope"))
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "The username or password is wrong."
    with httpx.Client(base_url=fresh_sim.endpoint, auth=TokenAuth("MIIbogus")) as client:
        assert _gateway_error(client.get(IMAGES))[:2] == (401, "APIGW.0301")


def test_a_domain_scoped_token_needs_a_project_header(fresh_sim: Simulator) -> None:
    body = _password_body(fresh_sim, _operator_password(fresh_sim), scope={})
    token = httpx.post(f"{fresh_sim.endpoint}/v3/auth/tokens", json=body).headers["X-Subject-Token"]
    with httpx.Client(base_url=fresh_sim.endpoint, auth=TokenAuth(token)) as client:
        assert client.get(IMAGES).status_code == 401
    with httpx.Client(
        base_url=fresh_sim.endpoint, auth=TokenAuth(token, project_id=fresh_sim.info.project_id)
    ) as client:
        assert client.get(IMAGES, params={"limit": 1}).status_code == 200


def test_projects_lookup_by_region_name(ims: httpx.Client, fresh_sim: Simulator) -> None:
    found = ims.get("/v3/projects", params={"name": fresh_sim.info.region}).json()["projects"]
    assert [p["id"] for p in found] == [fresh_sim.info.project_id]
    assert ims.get("/v3/projects", params={"name": "eu-west-0"}).json()["projects"] == []


def test_throttling_answers_429_then_recovers(ims: httpx.Client, control: httpx.Client) -> None:
    control.post("/throttle", json={"rate": 1, "burst": 3}).raise_for_status()
    statuses = [ims.get(IMAGES, params={"limit": 1}).status_code for _ in range(6)]
    assert statuses[:3] == [200, 200, 200] and 429 in statuses[3:]
    refused = ims.get(IMAGES, params={"limit": 1})
    status, code, message = _gateway_error(refused)
    assert (status, code) == (429, "APIGW.0308") and "throttling threshold" in message
    control.post("/throttle", json={"rate": None}).raise_for_status()
    assert ims.get(IMAGES, params={"limit": 1}).status_code == 200


def test_unknown_api_is_404_in_gateway_shape(ims: httpx.Client) -> None:
    assert _gateway_error(ims.get("/v2/cloudimages/nope/deeper"))[:2] == (404, "APIGW.0101")
    assert _gateway_error(ims.delete(IMAGES))[:2] == (404, "APIGW.0101")
