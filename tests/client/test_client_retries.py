"""Retries: GETs retry what is transient and stay bounded; an export POST is never resent unless provably unsent."""

from __future__ import annotations

import json
import logging
import random
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from ims_nb import ApiError, ImsClient, OutcomeUnknownError, RetryPolicy, ServerError, ThrottledError, TransportError
from ims_nb.client.base import ClientSettings
from ims_nb.client.config import Credentials, Endpoints
from ims_nb.sim import Simulator
from tests.helpers import BUCKET, LIST

EXPORT = "^/v1/cloudimages/[^/]+/file$"
SEED = 7
GZIP = {"Content-Encoding": "gzip"}


def policy(**overrides: Any) -> RetryPolicy:
    """A quick policy whose jitter is reproducible: the same seed gives the same delays."""
    return RetryPolicy(
        **{"max_attempts": 4, "base_delay": 0.01, "max_delay": 0.05, "rng": random.Random(SEED)} | overrides
    )


def expected_delays(count: int, **overrides: Any) -> list[float]:
    twin = policy(**overrides)
    return [twin.backoff(attempt) for attempt in range(1, count + 1)]


class FakeClock:
    """Monotonic time that only ``sleep`` moves."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class RefuseConnections(httpx.BaseTransport):
    """Fails the first ``refusals`` requests with a connect error (never sent), then passes requests on."""

    def __init__(self, inner: httpx.BaseTransport, refusals: int) -> None:
        self.inner = inner
        self.refusals = refusals

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.refusals > 0:
            self.refusals -= 1
            raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
        return self.inner.handle_request(request)


@pytest.fixture()
def make_client(
    fresh_sim: Simulator, sent: Any, recording: Callable[..., httpx.BaseTransport]
) -> Iterator[Callable[..., tuple[ImsClient, FakeClock]]]:
    """A client of the simulator with an injected clock and sleep; keyword arguments go to ``ClientSettings``."""
    made: list[ImsClient] = []

    def make(*, endpoint: str | None = None, refusals: int = 0, **options: Any) -> tuple[ImsClient, FakeClock]:
        info, clock = fresh_sim.info, FakeClock()
        transport = recording(sent, RefuseConnections(httpx.HTTPTransport(), refusals))
        settings = ClientSettings(
            info.region,
            Endpoints.override(endpoint or info.endpoint),
            Credentials(info.ak, info.sk, info.project_id),
            **{"retry": policy(), "transport": transport, "clock": clock} | options,
        )
        client = ImsClient(settings, sleep=clock.sleep)
        made.append(client)
        return client, clock

    yield make
    for client in made:
        client.close()


def add_fault(control: httpx.Client, **fault: Any) -> None:
    control.post("/faults", json=fault).raise_for_status()


def faults(control: httpx.Client) -> list[dict[str, Any]]:
    return list(control.get("/faults").json()["faults"])


def jobs(control: httpx.Client) -> list[dict[str, Any]]:
    return list(control.get("/state").json()["jobs"])


def closed_port_endpoint() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# --- GETs -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fault",
    [
        {"kind": "throttle"},
        {"kind": "response", "status": 500, "body": '{"error_code": "APIGW.0601", "error_msg": "x"}'},
        {"kind": "response", "status": 503, "body": "Service Unavailable", "headers": {"Content-Type": "text/plain"}},
        {"kind": "drop"},
    ],
    ids=["429", "500", "503", "drop"],
)
def test_gets_retry_transient_failures_then_succeed(
    make_client: Callable[..., tuple[ImsClient, FakeClock]],
    control: httpx.Client,
    sent: Any,
    fault: dict[str, Any],
) -> None:
    client, clock = make_client()
    expected = [i["id"] for i in client.iter_images(imagetype="gold")]
    sent.clear()
    add_fault(control, method="GET", path=LIST, count=2, **fault)
    assert [i["id"] for i in client.iter_images(imagetype="gold")] == expected
    assert clock.sleeps == expected_delays(2)  # two retries, each after its jittered backoff
    assert len(sent) == 3 and faults(control) == []  # both injected failures were used up


def test_retry_after_is_honoured_up_to_max_delay(
    make_client: Callable[..., tuple[ImsClient, FakeClock]], control: httpx.Client
) -> None:
    client, clock = make_client(retry=policy(max_delay=4.0))
    add_fault(control, kind="response", path="^/v2/images/", status=503, body="", headers={"Retry-After": "3"})
    add_fault(control, kind="response", path="^/v2/images/", status=429, body="", headers={"Retry-After": "60"})
    with pytest.raises(ApiError, match="IMG.0027"):  # the real answer, after the two canned ones
        client.image("no-such-image")
    assert clock.sleeps == [3.0, 4.0]


def test_retries_are_bounded_by_max_attempts(
    make_client: Callable[..., tuple[ImsClient, FakeClock]], control: httpx.Client
) -> None:
    client, clock = make_client()
    add_fault(control, kind="response", method="GET", path=LIST, status=503, body="", count=None)
    with pytest.raises(ServerError) as raised:
        list(client.iter_images())
    assert raised.value.status == 503 and faults(control)[0]["hits"] == 4 and len(clock.sleeps) == 3
    control.delete("/faults")
    add_fault(control, kind="drop", method="GET", path=LIST, count=None)
    with pytest.raises(TransportError) as dropped:
        list(client.iter_images())
    assert dropped.value.sent and isinstance(dropped.value.__cause__, httpx.RemoteProtocolError)
    assert dropped.value.method == "GET" and "/v2/cloudimages" in dropped.value.url
    assert faults(control)[0]["hits"] == 4 and len(clock.sleeps) == 6


def test_retries_stop_at_max_elapsed(
    make_client: Callable[..., tuple[ImsClient, FakeClock]], control: httpx.Client
) -> None:
    client, clock = make_client(retry=policy(max_attempts=1000, base_delay=1.0, max_delay=1.0, max_elapsed=10.0))
    add_fault(control, kind="throttle", method="GET", path=LIST, count=None)
    with pytest.raises(ThrottledError):
        list(client.iter_images())
    tries = faults(control)[0]["hits"]
    assert tries == len(clock.sleeps) + 1 and 10 < tries < 1000
    assert sum(clock.sleeps) <= 10.0  # no try starts after max_elapsed


def test_a_slow_answer_is_retried_for_gets(
    connect_sim: Callable[..., ImsClient], control: httpx.Client, sent: Any
) -> None:
    client = connect_sim(timeout=0.3, retry=policy())
    add_fault(control, kind="latency", method="GET", path=LIST, delay=0.8, count=1)
    started = time.monotonic()
    assert len(list(client.iter_images(max_items=5))) == 5
    assert time.monotonic() - started < 0.8 and len(sent) == 2  # timed out once, then answered


def test_gets_retry_connect_errors_and_give_up_unsent(
    make_client: Callable[..., tuple[ImsClient, FakeClock]], sent: Any
) -> None:
    client, _ = make_client(refusals=2)
    assert len(list(client.iter_images(max_items=1))) == 1 and len(sent) == 3
    nowhere, clock = make_client(endpoint=closed_port_endpoint())
    with pytest.raises(TransportError) as raised:
        nowhere.image("any")
    assert not raised.value.sent and isinstance(raised.value.__cause__, httpx.ConnectError)
    assert len(clock.sleeps) == 3


# --- the export POST --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "cause", "jobs_created"),
    [
        ({"kind": "drop"}, httpx.RemoteProtocolError, 0),
        ({"kind": "latency", "delay": 0.6}, httpx.ReadTimeout, 1),
        ({"kind": "response", "status": 500, "body": '{"error_code": "APIGW.0601", "error_msg": "x"}'}, None, 0),
        ({"kind": "response", "status": 503, "body": "busy"}, None, 0),
        ({"kind": "response", "status": 502, "body": "<html>bad gateway</html>"}, None, 0),
        ({"kind": "response", "status": 200, "body": "not gzip at all", "headers": GZIP}, httpx.DecodingError, 0),
        ({"kind": "response", "status": 200, "body": '{"job_id": '}, TransportError, 0),
    ],
    ids=["drop", "slower-than-timeout", "500", "503", "502", "undecodable-answer", "unreadable-answer"],
)
def test_an_export_whose_answer_is_lost_is_outcome_unknown(
    make_client: Callable[..., tuple[ImsClient, FakeClock]],
    control: httpx.Client,
    exportable: list[dict[str, Any]],
    caplog: pytest.LogCaptureFixture,
    fault: dict[str, Any],
    cause: type[Exception] | None,
    jobs_created: int,
) -> None:
    client, clock = make_client(timeout=httpx.Timeout(0.25))
    image_id, bucket_url = exportable[0]["id"], f"{BUCKET}:lost/{exportable[0]['id']}.qcow2"
    add_fault(control, method="POST", path=EXPORT, count=None, **fault)
    with pytest.raises(OutcomeUnknownError) as raised:
        client.export_image(image_id, bucket_url, "qcow2")
    error = raised.value
    assert (error.image_id, error.bucket_url) == (image_id, bucket_url)
    assert cause is None or isinstance(error.__cause__, cause)
    assert image_id in str(error) and "outcome unknown" in str(error)
    assert any(r.levelno == logging.WARNING and image_id in r.getMessage() for r in caplog.records)
    assert clock.sleeps == [] and faults(control)[0]["hits"] == 1  # exactly one POST reached the server
    deadline = time.monotonic() + 3
    while len(jobs(control)) < jobs_created and time.monotonic() < deadline:
        time.sleep(0.05)  # the slow answer is still being worked on server-side
    assert [j["bucket_url"] for j in jobs(control)] == [bucket_url] * jobs_created


def test_a_resubmission_after_an_unknown_outcome_is_refused_when_the_job_exists(
    make_client: Callable[..., tuple[ImsClient, FakeClock]], control: httpx.Client, exportable: list[dict[str, Any]]
) -> None:
    client, _ = make_client(timeout=httpx.Timeout(0.25))
    image_id, bucket_url = exportable[0]["id"], f"{BUCKET}:again.qcow2"
    add_fault(control, kind="latency", method="POST", path=EXPORT, delay=0.5)
    with pytest.raises(OutcomeUnknownError):
        client.export_image(image_id, bucket_url, "qcow2")
    time.sleep(0.5)
    with pytest.raises(Exception, match="IMG.0148"):  # the first job did start: the service says so
        client.export_image(image_id, bucket_url, "qcow2")
    assert len(jobs(control)) == 1


def test_an_export_that_never_connected_is_retried(
    make_client: Callable[..., tuple[ImsClient, FakeClock]], control: httpx.Client, exportable: list[dict[str, Any]]
) -> None:
    client, clock = make_client(refusals=2)
    job_id = client.export_image(exportable[0]["id"], f"{BUCKET}:retried.qcow2", "qcow2")
    assert [j["job_id"] for j in jobs(control)] == [job_id] and clock.sleeps == expected_delays(2)


def test_an_export_that_never_connects_is_an_unsent_transport_error(
    make_client: Callable[..., tuple[ImsClient, FakeClock]],
) -> None:
    client, clock = make_client(endpoint=closed_port_endpoint())
    with pytest.raises(TransportError) as raised:
        client.export_image("any-image", f"{BUCKET}:never.qcow2", "qcow2")
    error = raised.value
    assert not error.sent and error.method == "POST" and isinstance(error.__cause__, httpx.ConnectError)
    assert clock.sleeps == expected_delays(3)  # max_attempts tries in all


def test_a_throttled_export_is_retried(
    make_client: Callable[..., tuple[ImsClient, FakeClock]], control: httpx.Client, exportable: list[dict[str, Any]]
) -> None:
    client, clock = make_client()
    add_fault(control, kind="throttle", method="POST", path=EXPORT, count=2)
    job_id = client.export_image(exportable[0]["id"], f"{BUCKET}:throttled.qcow2", "qcow2")
    assert [j["job_id"] for j in jobs(control)] == [job_id] and len(clock.sleeps) == 2
    add_fault(control, kind="throttle", method="POST", path=EXPORT, count=None)
    with pytest.raises(ThrottledError):
        client.export_image(exportable[1]["id"], f"{BUCKET}:refused.qcow2", "qcow2")
    assert faults(control)[0]["hits"] == 4 and len(jobs(control)) == 1


@pytest.mark.parametrize("fault", [{"kind": "throttle"}, {"kind": "response", "status": 503, "body": ""}])
def test_a_throttled_password_login_is_retried_like_the_get_it_serves(
    connect_sim: Callable[..., ImsClient], sim_users: dict[str, Any], control: httpx.Client, fault: dict[str, Any]
) -> None:
    operator = sim_users["users"][0]
    client = connect_sim(
        ak=None,
        sk=None,
        project_id=None,
        username=operator["name"],
        password=operator["password"],
        domain=sim_users["domain_name"],
        retry=policy(),
    )
    add_fault(control, method="POST", path="^/v3/auth/tokens$", count=1, **fault)
    assert len(list(client.iter_images(max_items=2))) == 2


def password_client(
    connect_sim: Callable[..., ImsClient], sim_users: dict[str, Any], **options: Any
) -> tuple[ImsClient, FakeClock]:
    """A password-login client of the simulator whose retries sleep on a fake clock."""
    operator, clock = sim_users["users"][0], FakeClock()
    client = connect_sim(ak=None, sk=None, project_id=None, username=operator["name"], password=operator["password"],
                         domain=sim_users["domain_name"], retry=policy(), **options)  # fmt: skip
    client._sleep = clock.sleep
    return client, clock


def test_a_password_login_throttled_for_good_stops_within_the_retry_policy(
    connect_sim: Callable[..., ImsClient], sim_users: dict[str, Any], control: httpx.Client, sent: Any
) -> None:
    client, clock = password_client(connect_sim, sim_users)
    add_fault(control, kind="throttle", method="POST", path="^/v3/auth/tokens$", count=None)
    with pytest.raises(ThrottledError):
        list(client.iter_images(max_items=2))
    assert len(sent.matching("POST", "/v3/auth/tokens")) == 4 and clock.sleeps == expected_delays(3)
    assert sent.matching("GET", "/v2/cloudimages") == []


def test_an_export_whose_token_refresh_fails_once_starts_one_job(
    connect_sim: Callable[..., ImsClient],
    sim_users: dict[str, Any],
    control: httpx.Client,
    sent: Any,
    exportable: list[dict[str, Any]],
) -> None:
    client, clock = password_client(connect_sim, sim_users)
    assert client.image(exportable[0]["id"])["id"] == exportable[0]["id"]  # logged in
    expired = json.dumps({"error_code": "APIGW.0307", "error_msg": "The token expires."})
    add_fault(control, kind="response", status=401, body=expired, method="POST", path=EXPORT, count=1)
    add_fault(control, kind="response", status=502, body="", method="POST", path="^/v3/auth/tokens$", count=1)
    job_id = client.export_image(exportable[0]["id"], f"{BUCKET}:after-login.qcow2", "qcow2")
    assert [j["job_id"] for j in jobs(control)] == [job_id]  # the refused POST started nothing; one job
    assert len(sent.matching("POST", "/v3/auth/tokens")) == 2 and len(clock.sleeps) == 1
