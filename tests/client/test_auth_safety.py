"""Access-key safety: the first refusal the client cannot fix stops it, against the simulator's real AK lockout.

Wrong SK, unknown AK, clock skew (measured from the service's ``Date``), a locked AK and a wrong password each
get their own message; a listing, a 50-row launch and a 20-job watch send one refused signature, not one per
page, row or job; the AK is never locked by ims-nb; the CLI says so in one line.
"""

from __future__ import annotations

import asyncio
import json
import pickle
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

import ims_nb
from ims_nb.cli import _connect as cli_client
from ims_nb.cli._main import main
from ims_nb.client import AsyncImsClient, ImsClient
from ims_nb.client.auth import AkSkAuth
from ims_nb.client.refusals import MAX_CLOCK_SKEW, auth_reason, clock_skew, describe_skew
from ims_nb.errors import AuthError, AuthReason
from ims_nb.exports.launch import launch
from ims_nb.exports.ledger import Ledger
from ims_nb.exports.plan import plan_exports
from ims_nb.exports.watch import watch, watch_async
from ims_nb.rules import SIMULATOR_PROFILE
from ims_nb.sim import Simulator
from ims_nb.sim.gateway import LOCKOUT_FAILURES
from tests.helpers import BUCKET, AsyncRecordingTransport, RecordingTransport, RequestLog

WRONG_SK = "not-the-secret-key-0123456789abcdef"
UNKNOWN_AK = "NOSUCHAK000000000000"
COARSE: dict[str, Any] = {"interval": 300.0, "max_interval": 1800.0, "max_rate": 1000.0}


def skewed(minutes: float) -> Callable[[], datetime]:
    """A signing clock ``minutes`` ahead of the real one (behind when negative)."""
    return lambda: datetime.now(UTC) + timedelta(minutes=minutes)


def signed(sent: RequestLog) -> list[httpx.Request]:
    """The signed requests among those sent (AK/SK, OBS or token)."""
    return [r for r in sent.requests if "authorization" in r.headers or "x-auth-token" in r.headers]


def assert_not_locked(connect_sim: Callable[..., ImsClient]) -> None:
    """A correct client still works: the AK was not locked (and its failure count starts again)."""
    with connect_sim() as good:
        assert len(list(good.iter_images(max_items=3))) == 3


@pytest.fixture()
def plan(connect_sim: Callable[..., ImsClient]) -> pd.DataFrame:
    """50 exportable rows, planned with correct credentials."""
    with connect_sim() as good:
        frame = plan_exports(good.images(imagetype="private"), bucket=BUCKET, key_template="safety/{id8}.{ext}",
                             quick=False, profile=SIMULATOR_PROFILE)  # fmt: skip
    exportable = frame[frame["exportable"].fillna(False).astype(bool)].reset_index(drop=True)
    assert len(exportable) >= 50
    return exportable.head(50)


# --- a wrong SK: one refused signature, whatever the batch -------------------------------------------------


def test_a_wrong_sk_stops_a_listing_at_the_first_refusal(
    connect_sim: Callable[..., ImsClient], sent: RequestLog
) -> None:
    client = connect_sim(sk=WRONG_SK, page_size=10)
    with pytest.raises(AuthError) as raised:
        client.images()
    error = raised.value
    assert (error.status, error.code, error.reason, error.final, error.sent) == (
        401, "APIGW.0301", AuthReason.WRONG_SECRET_KEY, True, True)  # fmt: skip
    assert str(error).startswith(f"the service refused the signature of AK {client.settings.credentials.ak}")
    assert "secret key (SK)" in str(error) and "sent nothing more" in str(error) and WRONG_SK not in str(error)
    for _ in range(10):  # a notebook user running the cell again and again
        with pytest.raises(AuthError) as again:
            client.images()
        assert not again.value.sent and again.value.reason is AuthReason.WRONG_SECRET_KEY
        assert str(again.value).startswith("not sent: this client's credentials were refused already")
    assert len(signed(sent)) == 1
    assert_not_locked(connect_sim)


def test_a_wrong_sk_stops_a_50_row_launch_before_any_row_is_claimed(
    connect_sim: Callable[..., ImsClient], sent: RequestLog, plan: pd.DataFrame, ledger: Ledger
) -> None:
    client = connect_sim(sk=WRONG_SK)
    sent.clear()
    with pytest.raises(AuthError) as raised:
        launch(plan, client=client, ledger=ledger, concurrency=8, max_rate=1000)
    assert raised.value.reason is AuthReason.WRONG_SECRET_KEY
    assert len(signed(sent)) == 1 and sent.matching("POST") == []
    assert ledger.rows() == []  # nothing claimed: the next launch, with the right SK, sends every row
    assert_not_locked(connect_sim)
    with connect_sim() as good:
        assert len(launch(plan, client=good, ledger=ledger, concurrency=8, max_rate=1000)) == 50


def test_refused_credentials_mid_launch_stop_the_batch(
    connect_sim: Callable[..., ImsClient], sent: RequestLog, plan: pd.DataFrame, ledger: Ledger, control: httpx.Client
) -> None:
    """Credentials proven, then refused (the AK locked by another process): the workers stop claiming rows."""
    client = connect_sim()
    client.check_credentials()
    body = json.dumps({"error_code": "APIGW.0301",
                       "error_msg": "Incorrect IAM authentication information: AK access failed to reach the limit,"
                                    "forbidden"})  # fmt: skip
    control.post("/faults", json={"kind": "response", "method": "POST", "path": "/file$", "status": 401, "body": body,
                                  "count": None}).raise_for_status()  # fmt: skip
    sent.clear()
    with pytest.raises(AuthError) as raised:
        launch(plan, client=client, ledger=ledger, concurrency=4, max_rate=1000)
    assert raised.value.reason is AuthReason.ACCESS_KEY_LOCKED and "wait 5 minutes" in str(raised.value)
    assert 1 <= len(sent.matching("POST")) <= 4  # at most the posts already in flight
    rows = ledger.rows()
    assert len(rows) <= 4 and all(r["state"] == "refused" for r in rows)
    assert sum(r["error_code"] == "APIGW.0301" for r in rows) == len(sent.matching("POST"))


def test_a_wrong_sk_stops_a_20_job_watch_at_the_first_poll(
    connect_sim: Callable[..., ImsClient], sent: RequestLog, plan: pd.DataFrame, ledger: Ledger, sim_time: Any
) -> None:
    with connect_sim() as good:
        launch(plan.head(20), client=good, ledger=ledger, max_rate=1000)
    before = ledger.rows()
    client = connect_sim(sk=WRONG_SK)
    sent.clear()
    with pytest.raises(AuthError, match="secret key"):
        watch(ledger, client=client, clock=sim_time, sleep=sim_time.sleep, **COARSE)
    assert len(signed(sent)) == 1
    assert ledger.rows() == before  # the jobs go on: nothing is recorded against them
    with pytest.raises(AuthError):
        watch([r["job_id"] for r in before], client=client, clock=sim_time, sleep=sim_time.sleep, **COARSE)
    assert len(signed(sent)) == 1  # the same client sends nothing more
    fresh = connect_sim(sk=WRONG_SK)
    with pytest.raises(AuthError):
        watch([r["job_id"] for r in before], client=fresh, clock=sim_time, sleep=sim_time.sleep, **COARSE)
    assert len(signed(sent)) == 2
    assert_not_locked(connect_sim)


def test_a_wrong_sk_stops_an_async_watch_of_20_concurrent_polls(
    fresh_sim: Simulator, connect_sim: Callable[..., ImsClient], plan: pd.DataFrame, ledger: Ledger, sim_time: Any
) -> None:
    with connect_sim() as good:
        launch(plan.head(20), client=good, ledger=ledger, max_rate=1000)
    job_ids = [r["job_id"] for r in ledger.rows()]
    log = RequestLog()
    info = fresh_sim.info

    async def scenario() -> None:
        client = ims_nb.connect_async(ak=info.ak, sk=WRONG_SK, project_id=info.project_id, endpoint=info.endpoint,
                                      transport=AsyncRecordingTransport(log))  # fmt: skip
        async with client:
            with pytest.raises(AuthError):
                await watch_async(ledger, client=client, clock=sim_time, sleep=sim_time.async_sleep, **COARSE)
            with pytest.raises(AuthError):
                await client.wait(job_ids, clock=sim_time, sleep=sim_time.async_sleep, max_rate=1000)
            with pytest.raises(AuthError):  # twenty at once: they wait for the first answer, then stop unsent
                await asyncio.gather(*(client.job_progress(job_id) for job_id in job_ids))

    asyncio.run(scenario())
    assert len(signed(log)) == 1
    assert_not_locked(connect_sim)


# --- each refusal says what it is ------------------------------------------------------------------------------


def test_an_unknown_ak_is_named(connect_sim: Callable[..., ImsClient], sent: RequestLog) -> None:
    client = connect_sim(ak=UNKNOWN_AK)
    for _ in range(3):
        with pytest.raises(AuthError) as raised:
            list(client.iter_images())
    assert raised.value.reason is AuthReason.UNKNOWN_ACCESS_KEY and "ak not exist" in raised.value.message
    assert f"does not know AK {UNKNOWN_AK}" in str(raised.value)
    assert len(signed(sent)) == 1


@pytest.mark.parametrize(("minutes", "words"), [(-17, "17 min behind"), (20, "20 min ahead of")])
def test_clock_skew_is_measured_from_the_date_header(
    connect_sim: Callable[..., ImsClient], sent: RequestLog, minutes: float, words: str
) -> None:
    client = connect_sim(signing_clock=skewed(minutes))
    with pytest.raises(AuthError) as raised:
        client.images()
    error = raised.value
    assert error.reason is AuthReason.CLOCK_SKEW and error.final and error.skew_seconds is not None
    assert abs(error.skew_seconds - minutes * 60) <= 3
    text = str(error)
    assert text.startswith(f"your clock is {words} the service's (Date: ")
    date = text.split("(Date: ", 1)[1].split(")", 1)[0]
    assert abs(parsedate_to_datetime(date).timestamp() - time.time()) < 10
    assert "fix the clock" in text
    with pytest.raises(AuthError):
        client.job_progress("any")
    assert len(signed(sent)) == 1
    assert_not_locked(connect_sim)


def test_obs_clock_skew_is_measured_too(connect_sim: Callable[..., ImsClient], sent: RequestLog) -> None:
    client = connect_sim(signing_clock=skewed(-30))
    with pytest.raises(AuthError) as raised:
        client.bucket(BUCKET)
    assert (raised.value.code, raised.value.reason) == ("RequestTimeTooSkewed", AuthReason.CLOCK_SKEW)
    assert "your clock is 30 min behind" in str(raised.value)
    with pytest.raises(AuthError):
        client.images()
    assert len(signed(sent)) == 1


def test_a_skew_inside_the_tolerance_works(connect_sim: Callable[..., ImsClient]) -> None:
    assert len(list(connect_sim(signing_clock=skewed(-10)).iter_images(max_items=2))) == 2


def test_a_locked_ak_says_wait(fresh_sim: Simulator, connect_sim: Callable[..., ImsClient], sent: RequestLog) -> None:
    info = fresh_sim.info
    with httpx.Client(base_url=info.endpoint, auth=AkSkAuth(info.ak, WRONG_SK, project_id=info.project_id)) as raw:
        statuses = [raw.get("/v2/cloudimages", params={"limit": 1}).status_code for _ in range(LOCKOUT_FAILURES)]
    assert statuses == [401] * LOCKOUT_FAILURES  # what a client that retried refusals would have done
    client = connect_sim()
    with pytest.raises(AuthError) as raised:
        client.images()
    assert raised.value.reason is AuthReason.ACCESS_KEY_LOCKED and raised.value.final
    assert str(raised.value).startswith(f"AK {info.ak} is locked") and "wait 5 minutes" in str(raised.value)
    with pytest.raises(AuthError):
        client.images()
    assert len(signed(sent)) == 1
    httpx.post(f"{info.endpoint}/_sim/lockouts/reset").raise_for_status()
    assert_not_locked(connect_sim)


def test_a_wrong_password_stops_the_logins(
    connect_sim: Callable[..., ImsClient], sim_users: dict[str, Any], sent: RequestLog
) -> None:
    operator = sim_users["users"][0]
    client = connect_sim(ak=None, sk=None, project_id=None, username=operator["name"], password="Operator-wrong",
                         domain=sim_users["domain_name"])  # fmt: skip
    for _ in range(3):
        with pytest.raises(AuthError) as raised:
            client.images()
    assert raised.value.reason is AuthReason.WRONG_PASSWORD and "username, password or domain" in str(raised.value)
    assert "Operator-wrong" not in str(raised.value) and len(sent.matching("POST", "/v3/auth/tokens")) == 1


def test_a_refusal_without_a_known_cause_does_not_stop_the_client(
    sim_client: ImsClient, control: httpx.Client, sent: RequestLog
) -> None:
    body = json.dumps({"error_code": "APIGW.0301", "error_msg": "Incorrect IAM authentication information"})
    control.post("/faults", json={"kind": "response", "path": "^/v2/images/", "status": 401, "body": body})
    with pytest.raises(AuthError) as raised:
        sim_client.image("x")
    assert raised.value.reason is AuthReason.OTHER and not raised.value.final
    assert len(list(sim_client.iter_images(max_items=1))) == 1


def test_the_simulator_sends_the_real_date(fresh_sim: Simulator) -> None:
    response = httpx.get(f"{fresh_sim.endpoint}/v2/cloudimages")  # refused, but dated
    assert response.status_code == 401
    assert abs(parsedate_to_datetime(response.headers["Date"]).timestamp() - time.time()) < 3


# --- the parts, without a server -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code", "message", "skew", "login", "reason"),
    [
        (401, "APIGW.0301", "Incorrect IAM authentication information: verify aksk signature fail", None, False,
         AuthReason.WRONG_SECRET_KEY),
        (401, "APIGW.0301", "verify aksk signature fail", -1200.0, False, AuthReason.CLOCK_SKEW),
        (401, "APIGW.0301", "verify aksk signature fail", -600.0, False, AuthReason.WRONG_SECRET_KEY),
        (401, "APIGW.0301", "signature expired: X-Sdk-Date is more than 15 minutes away", None, False,
         AuthReason.CLOCK_SKEW),
        (401, "APIGW.0301", "Get secretKey failed,ak not exist", None, False, AuthReason.UNKNOWN_ACCESS_KEY),
        (401, "APIGW.0301", "AK access failed to reach the limit,forbidden", None, False,
         AuthReason.ACCESS_KEY_LOCKED),
        (401, "APIGW.0307", "The token must be updated: token expires, expires_at: x", None, False,
         AuthReason.TOKEN_EXPIRED),
        (401, "401", "The username or password is wrong.", None, True, AuthReason.WRONG_PASSWORD),
        (403, "SignatureDoesNotMatch", "The request signature ...", None, False, AuthReason.WRONG_SECRET_KEY),
        (403, "InvalidAccessKeyId", "The access key Id ...", None, False, AuthReason.UNKNOWN_ACCESS_KEY),
        (403, "RequestTimeTooSkewed", "The difference ...", None, False, AuthReason.CLOCK_SKEW),
        (403, "APIGW.0302", "IAM user not authorized", -3600.0, False, AuthReason.NOT_PERMITTED),
        (403, "IMG.0026", "role invalid", None, False, AuthReason.NOT_PERMITTED),
        (401, "APIGW.0301", "Incorrect IAM authentication information", None, False, AuthReason.OTHER),
    ],
)  # fmt: skip
def test_refusal_reasons(
    status: int, code: str, message: str, skew: float | None, login: bool, reason: AuthReason
) -> None:
    assert auth_reason(status, code, message, skew_seconds=skew, login=login) is reason


def test_skew_words_and_measurement() -> None:
    assert (describe_skew(-17 * 60), describe_skew(16.6 * 60), describe_skew(-40)) == (
        "17 min behind", "17 min ahead of", "40 s behind")  # fmt: skip
    request = httpx.Request("GET", "https://ims.example.com/", headers={"X-Sdk-Date": "20240102T030405Z"})
    response = httpx.Response(401, headers={"Date": "Tue, 02 Jan 2024 03:21:05 GMT"}, request=request)
    assert clock_skew(request, response) == (-1020.0, "Tue, 02 Jan 2024 03:21:05 GMT")
    assert clock_skew(request, httpx.Response(401, request=request)) == (None, None)
    assert clock_skew(request, httpx.Response(401, headers={"Date": "garbage"}, request=request))[0] is None
    assert MAX_CLOCK_SKEW == 15 * 60


def test_an_auth_error_survives_pickling() -> None:
    error = AuthError(401, "APIGW.0301", "signature expired", "rid", AuthReason.CLOCK_SKEW, "your clock is off",
                      -1020.0, method="GET", url="https://x/")  # fmt: skip
    copy = pickle.loads(pickle.dumps(error))
    assert (str(copy), copy.reason, copy.skew_seconds, copy.url, copy.final) == (
        str(error), AuthReason.CLOCK_SKEW, -1020.0, "https://x/", True)  # fmt: skip


# --- the command line --------------------------------------------------------------------------------------------


@pytest.fixture()
def recorded_cli(monkeypatch: pytest.MonkeyPatch, clean_env: Path, sent: RequestLog) -> dict[str, Any]:
    """The CLI's ``connect`` (and ``connect_simulator``, for ``--sim``) record into ``sent``; ``extra`` adds options
    (a skewed signing clock)."""
    extra: dict[str, Any] = {}
    for name in ("connect", "connect_simulator"):
        original = getattr(cli_client, name)

        def recording(*args: Any, _original: Any = original, **options: Any) -> ImsClient:
            return _original(*args, **options, **extra, transport=RecordingTransport(sent))

        monkeypatch.setattr(cli_client, name, recording)
    return extra


def sim_line(sim: Simulator, **changes: str) -> str:
    return json.dumps(sim.info.as_json_dict() | changes)


def one_error_line(err: str, *forbidden: str) -> str:
    lines = [line for line in err.splitlines() if line and not line.startswith("SIMULATOR:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert all(text not in err for text in forbidden), err
    return lines[0]


@pytest.mark.parametrize(
    ("argv", "verb"),
    [
        (["images", "--format", "csv"], "images"),
        (["preflight", "--bucket-url", f"{BUCKET}:x/{{id8}}.{{ext}}", "--format", "qcow2"], "preflight"),
        (["export", "--imagetype", "private", "--bucket", BUCKET, "--format", "qcow2", "--concurrency", "8"],
         "export"),
    ],
    ids=["images", "preflight", "export"],
)  # fmt: skip
def test_the_cli_says_a_wrong_sk_in_one_line_and_exits_1(
    fresh_sim: Simulator,
    connect_sim: Callable[..., ImsClient],
    recorded_cli: dict[str, Any],
    sent: RequestLog,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    argv: list[str],
    verb: str,
) -> None:
    ledger = ["--ledger", str(tmp_path / "ledger.sqlite")] if verb == "export" else []
    assert main([*argv, *ledger, "--sim", sim_line(fresh_sim, sk=WRONG_SK)]) == 1
    out, err = capsys.readouterr()
    line = one_error_line(err, WRONG_SK, fresh_sim.info.sk)
    assert out == "" and line.startswith(f"ims-nb {verb}: error: the service refused the signature")
    assert "401 APIGW.0301" in line
    assert len(signed(sent)) <= 2 and sent.matching("POST") == []
    assert_not_locked(connect_sim)


def test_the_cli_watch_stops_at_the_first_refused_poll(
    fresh_sim: Simulator,
    connect_sim: Callable[..., ImsClient],
    recorded_cli: dict[str, Any],
    sent: RequestLog,
    plan: pd.DataFrame,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    path = tmp_path / "ledger.sqlite"
    with connect_sim() as good, Ledger(path) as ledger:
        launch(plan.head(20), client=good, ledger=ledger, max_rate=1000)
    sent.clear()
    assert main(["jobs", "--watch", "--ledger", str(path), "--sim", sim_line(fresh_sim, sk=WRONG_SK)]) == 1
    line = one_error_line(capsys.readouterr().err, WRONG_SK)
    assert line.startswith("ims-nb jobs: error: the service refused the signature") and len(signed(sent)) == 1
    assert_not_locked(connect_sim)


def test_the_cli_measures_clock_skew(
    fresh_sim: Simulator, recorded_cli: dict[str, Any], sent: RequestLog, capsys: pytest.CaptureFixture[str]
) -> None:
    recorded_cli["signing_clock"] = skewed(-17)
    assert main(["images", "--sim", sim_line(fresh_sim), "--format", "csv"]) == 1
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith("ims-nb images: error: your clock is 17 min behind the service's (Date: ")
    assert len(signed(sent)) == 1


def test_a_real_cli_process_prints_no_traceback(fresh_sim: Simulator, clean_env: Path) -> None:
    import os
    import subprocess
    import sys

    env = dict(os.environ, HUAWEICLOUD_SDK_AK=fresh_sim.info.ak, HUAWEICLOUD_SDK_SK=WRONG_SK)
    result = subprocess.run(
        [sys.executable, "-m", "ims_nb", "images", "--endpoint", fresh_sim.endpoint, "--format", "csv"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1 and result.stdout == ""
    line = one_error_line(result.stderr, WRONG_SK)
    assert "secret key (SK)" in line and "401 APIGW.0301" in line


def test_the_async_twin_of_a_refused_client_sends_nothing(fresh_sim: Simulator, clean_env: Path) -> None:
    info = fresh_sim.info
    with ims_nb.connect(ak=info.ak, sk=WRONG_SK, project_id=info.project_id, endpoint=info.endpoint) as client:
        with pytest.raises(AuthError):
            client.images()
        twin: AsyncImsClient = client.to_async()

    async def first() -> None:
        async with twin:
            with pytest.raises(AuthError) as raised:
                await twin.images()
            assert not raised.value.sent

    asyncio.run(first())
