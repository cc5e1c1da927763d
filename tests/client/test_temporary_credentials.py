"""A password login signs OBS with temporary AK/SK from IAM (``ims_nb.client.credentials``): the flow driven by
hand, and end to end through the simulator (plan, launch, watch and verify; renewal before expiry and after an
early refusal; the async client), with the new secrets masked everywhere."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

import ims_nb
from ims_nb import AsyncImsClient, ImsClient
from ims_nb.client.auth import TokenAuth
from ims_nb.client.credentials import (
    DURATION_SECONDS,
    REFRESH_MARGIN,
    SECURITYTOKENS_PATH,
    TemporaryCredential,
    TemporaryObsAuth,
    parse_credential,
)
from ims_nb.errors import AuthError, MalformedAnswerError, mask_secrets
from ims_nb.exports.launch import launch
from ims_nb.exports.ledger import Ledger
from ims_nb.exports.plan import plan_exports
from ims_nb.exports.watch import watch
from ims_nb.rules import SIMULATOR_PROFILE
from ims_nb.sim import Simulator
from ims_nb.vocab import State
from tests.helpers import BUCKET

IAM = "https://iam.example.test"
OBJECT = f"https://obs.example.test/{BUCKET}/exports/a.qcow2"
SECRET = "PLANTED-TEMPORARY-SK-0a1b2c3d4e5f6a7b8c9d"
TOKEN = "PLANTED-SECURITY-TOKEN-9f8e7d6c5b4a3f2e1d0c"


# --- the flow, driven by hand ------------------------------------------------------------------------------


def _answer(request: httpx.Request, *, expires_at: str = "2030-01-02T03:04:05.123000Z",
            access: str = "TEMPAK0000000000000A", body: dict[str, Any] | None = None) -> httpx.Response:  # fmt: skip
    """IAM's 201 with one temporary credential (or ``body``)."""
    credential = {"access": access, "secret": SECRET, "securitytoken": TOKEN, "expires_at": expires_at}
    return httpx.Response(201, json=body or {"credential": credential}, request=request)


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture()
def clock() -> Clock:
    return Clock(1_893_456_000.0)  # 2030-01-01T00:00:00Z, a day before the answers' expiry


def _send(auth: TemporaryObsAuth, answers: Callable[[httpx.Request], httpx.Response]) -> list[httpx.Request]:
    """Drive ``auth``'s flow for one OBS GET the way httpx does; returns every request it made."""
    flow = auth.auth_flow(httpx.Request("GET", OBJECT))
    made = [next(flow)]
    while True:
        try:
            made.append(flow.send(answers(made[-1])))
        except StopIteration:
            return made


def _obs_ok(request: httpx.Request) -> httpx.Response:
    if request.url.path == SECURITYTOKENS_PATH:
        return _answer(request)
    return httpx.Response(200, request=request)


def test_the_first_obs_request_asks_iam_then_signs_with_the_temporary_key(clock: Clock) -> None:
    auth = TemporaryObsAuth(TokenAuth("MII-token"), IAM, clock=clock)
    sts, signed = _send(auth, _obs_ok)
    assert (sts.method, str(sts.url)) == ("POST", IAM + SECURITYTOKENS_PATH)
    assert sts.headers["X-Auth-Token"] == "MII-token"
    identity = {"methods": ["token"], "token": {"duration_seconds": DURATION_SECONDS}}
    assert json.loads(sts.content) == {"auth": {"identity": identity}}
    assert signed.headers["Authorization"].startswith("OBS TEMPAK0000000000000A:")
    assert signed.headers["x-obs-security-token"] == TOKEN
    assert auth.credential is not None and auth.credential.expires_at == 1_893_553_445.123
    again = _send(auth, _obs_ok)  # the same credentials again, no second ask
    assert [r.method for r in again] == ["GET"] and again[0].headers["x-obs-security-token"] == TOKEN


def test_the_credentials_are_renewed_before_they_expire(clock: Clock) -> None:
    auth = TemporaryObsAuth(TokenAuth("MII-token"), IAM, clock=clock)
    _send(auth, _obs_ok)
    assert auth.credential is not None
    clock.now = auth.credential.expires_at - REFRESH_MARGIN - 1
    assert len(_send(auth, _obs_ok)) == 1
    clock.now += 2  # within the margin: renewed although not expired yet
    assert [r.url.path for r in _send(auth, _obs_ok)] == [SECURITYTOKENS_PATH, "/" + OBJECT.split("/", 3)[3]]


def test_an_early_refusal_of_the_token_renews_them_and_sends_once_more(clock: Clock) -> None:
    auth = TemporaryObsAuth(TokenAuth("MII-token"), IAM, clock=clock)
    _send(auth, _obs_ok)
    refusals = iter([403, 403])

    def refused_then_ok(request: httpx.Request) -> httpx.Response:
        if request.url.path == SECURITYTOKENS_PATH:
            return _answer(request, access="TEMPAK0000000000000B")
        status = next(refusals, 200) if request.headers["Authorization"].startswith("OBS TEMPAK0000000000000A") else 200
        return httpx.Response(status, headers={"x-obs-error-code": "InvalidAccessKeyId"}, request=request)

    made = _send(auth, refused_then_ok)
    assert [r.method for r in made] == ["GET", "POST", "GET"]
    assert made[-1].headers["Authorization"].startswith("OBS TEMPAK0000000000000B:")
    other = TemporaryObsAuth(TokenAuth("MII-token"), IAM, clock=clock)  # a refusal of another kind stands
    denied = _send(other, lambda r: _answer(r) if r.method == "POST" else httpx.Response(
        403, headers={"x-obs-error-code": "AccessDenied"}, request=r))  # fmt: skip
    assert [r.method for r in denied] == ["POST", "GET"]


def test_iam_answers_are_read_in_either_spelling_and_checked(clock: Clock) -> None:
    request = httpx.Request("POST", IAM + SECURITYTOKENS_PATH)
    sdk_names = {"credentials": {"accessKeyId": "AK2", "secretAccessKey": SECRET, "securityToken": TOKEN,
                                 "expiration": "2030-01-02T03:04:05.123000Z"}}  # fmt: skip
    expected = TemporaryCredential("AK2", SECRET, TOKEN, 1_893_553_445.123)
    assert parse_credential(_answer(request, body=sdk_names)) == expected
    with pytest.raises(MalformedAnswerError, match="lack expires_at, secret$"):
        parse_credential(_answer(request, body={"credential": {"access": "AK", "securitytoken": TOKEN}}))
    with pytest.raises(MalformedAnswerError, match="a valid expires_at"):
        parse_credential(_answer(request, expires_at="soon"))
    refused = httpx.Response(403, json={"error": {"code": 403, "message": "no"}}, request=request)
    with pytest.raises(AuthError):
        parse_credential(refused)


def test_the_temporary_secrets_never_show(clock: Clock) -> None:
    auth = TemporaryObsAuth(TokenAuth("MII-token"), IAM, clock=clock)
    _send(auth, _obs_ok)
    shown = f"{auth!r} {auth.credential!r} {auth.credential}"
    assert "TEMPAK0000000000000A" in shown and SECRET not in shown and TOKEN not in shown
    assert mask_secrets(f"echoed {SECRET} and {TOKEN}") == "echoed *** and ***"  # registered when parsed


# --- end to end through the simulator ---------------------------------------------------------------------


@pytest.fixture()
def login(connect_sim: Callable[..., ImsClient], sim_users: dict[str, Any]) -> ImsClient:
    """A password-login client of the reset simulator (no AK/SK of its own), recording into ``sent``."""
    operator = sim_users["users"][0]
    return connect_sim(ak=None, sk=None, project_id=None, username=operator["name"], password=operator["password"],
                       domain=sim_users["domain_name"])  # fmt: skip


def _obs_requests(sent: Any) -> list[httpx.Request]:
    return [r for r in sent.requests if r.headers.get("Authorization", "").startswith("OBS ")]


def test_a_password_login_plans_launches_and_verifies_a_batch(
    login: ImsClient, sent: Any, ledger: Ledger, exportable: list[dict[str, Any]], sim_time: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    caplog.set_level(logging.DEBUG)
    chosen = [image["id"] for image in exportable[:4]]
    plan = plan_exports(login.images(imagetype="private"), bucket=BUCKET, key_template="sts/{id8}.{ext}",
                        file_format="qcow2", quick=False, client=login, profile=SIMULATOR_PROFILE)  # fmt: skip
    assert not {"bucket-not-found", "object-exists"} & set(plan["blocking"].explode().dropna())
    plan = plan[plan["image_id"].isin(chosen)]
    assert plan["exportable"].all() and len(plan) == 4
    looked_up = _obs_requests(sent)
    assert looked_up and all("x-obs-security-token" in r.headers for r in looked_up)  # bucket and object HEADs
    launch(plan, client=login, ledger=ledger, max_rate=1000)
    watch(ledger, client=login, clock=sim_time, sleep=sim_time.sleep, interval=300.0, max_interval=1800.0,
          max_rate=1000.0)  # fmt: skip
    rows = ledger.rows()
    assert {r["state"] for r in rows} == {State.VERIFIED.value} and all(r["object_size"] for r in rows)
    assert len(sent.matching("POST", SECURITYTOKENS_PATH)) == 1  # one set served the whole run
    assert len(sent.matching("POST", "^/v3/auth/tokens$")) == 1
    temporary = login._obs_auth()
    assert isinstance(temporary, TemporaryObsAuth) and temporary.credential is not None
    secrets = (temporary.credential.secret, temporary.credential.security_token)
    assert not [s for s in secrets if s in caplog.text or s in repr(login) or s in repr(temporary)]


def test_a_password_login_renews_the_temporary_credentials_before_they_expire(
    login: ImsClient, sent: Any, fresh_sim: Simulator
) -> None:
    assert login.bucket(BUCKET).exists
    auth = login._obs_auth()
    assert isinstance(auth, TemporaryObsAuth) and auth.credential is not None
    first = auth.credential
    auth.clock = lambda: first.expires_at - REFRESH_MARGIN + 1  # this machine's clock, near the expiry
    assert login.object_exists(BUCKET, "README.txt")
    assert auth.credential is not None and auth.credential.access != first.access
    assert len(sent.matching("POST", SECURITYTOKENS_PATH)) == 2
    assert len(fresh_sim.backend.temporary) == 2
    assert auth.credential.expires_at - time.time() == pytest.approx(DURATION_SECONDS, abs=60)
    auth.clock = time.time  # the clock back to the simulator's: the new set is good for an hour, no third ask
    assert login.object_exists(BUCKET, "README.txt")
    assert len(sent.matching("POST", SECURITYTOKENS_PATH)) == 2


def test_credentials_the_service_expired_early_are_renewed_without_an_error(
    login: ImsClient, sent: Any, control: httpx.Client
) -> None:
    assert login.bucket(BUCKET).exists
    control.post("/tokens/expire").raise_for_status()  # the IAM token and the temporary AK, both
    assert login.object_size(BUCKET, "README.txt") == 512
    # the first set; the ask for a new one, refused for the expired IAM token; the same ask after a new login
    assert len(sent.matching("POST", SECURITYTOKENS_PATH)) == 3
    assert len(sent.matching("POST", "^/v3/auth/tokens$")) == 2
    refused = [r for r in _obs_requests(sent) if r.url.path.endswith("README.txt")]
    assert len(refused) == 2 and refused[0].headers["Authorization"] != refused[1].headers["Authorization"]


def test_the_async_client_of_a_password_login_reads_obs_too(
    fresh_sim: Simulator, sim_users: dict[str, Any], sent: Any, async_recording: Callable[..., Any]
) -> None:
    operator = sim_users["users"][0]
    transport = async_recording(sent, httpx.ASGITransport(app=fresh_sim.simulation))
    client = ims_nb.connect_async(username=operator["name"], password=operator["password"],
                                  domain=sim_users["domain_name"], endpoint=fresh_sim.endpoint,
                                  transport=transport)  # fmt: skip

    async def scenario(client: AsyncImsClient) -> tuple[bool, int | None]:
        async with client:
            found = await client.bucket(BUCKET)
            return found.exists, await client.object_size(BUCKET, "README.txt")

    assert asyncio.run(scenario(client)) == (True, 512)
    assert len(sent.matching("POST", SECURITYTOKENS_PATH)) == 1
