"""Every error shape the services answer with, and secrets kept out of errors and logs at every level."""

from __future__ import annotations

import asyncio
import logging
import random
import re
import socket
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from ims_nb import (
    ApiError,
    AuthError,
    ImsClient,
    ImsNbError,
    MalformedAnswerError,
    OutcomeUnknownError,
    RetryPolicy,
    ServerError,
    ThrottledError,
    TransportError,
)
from tests.helpers import BUCKET, LIST

REQUEST_ID = re.compile(r"^[0-9a-f]{32}$")
SECURITY_TOKEN = "sec-token-0123456789abcdef"


def fast_retry(attempts: int = 3) -> RetryPolicy:
    return RetryPolicy(max_attempts=attempts, base_delay=0.001, max_delay=0.002, rng=random.Random(0))


# --- error shapes ---------------------------------------------------------------------------------


def test_an_ims_refusal_keeps_status_code_and_request_id(sim_client: ImsClient, sent: Any) -> None:
    iso = next(sim_client.iter_images(imagetype="private", virtual_env_type="IsoImage", status="active"))
    with pytest.raises(ApiError) as raised:
        sim_client.export_image(iso["id"], f"{BUCKET}:iso.qcow2", "qcow2")
    error = raised.value
    assert type(error) is ApiError
    assert (error.status, error.code, error.method) == (400, "IMG.0167", "POST")
    assert error.message == "This operation cannot be performed for ISO images."
    assert REQUEST_ID.match(error.request_id or "") and error.request_id in str(error)
    assert error.url.endswith(f"/v1/cloudimages/{iso['id']}/file")
    assert len(sent.matching("POST")) == 1


def test_a_gateway_refusal_is_an_auth_error(connect_sim: Callable[..., ImsClient], sent: Any) -> None:
    client = connect_sim(sk="not-the-secret-key-0123456789")
    with pytest.raises(AuthError) as raised:
        list(client.iter_images(max_items=1))
    error = raised.value
    assert (error.status, error.code) == (401, "APIGW.0301") and REQUEST_ID.match(error.request_id or "")
    assert "not-the-secret-key" not in str(error) and len(sent) == 1
    unknown_ak = connect_sim(ak="NOSUCHAK0000000000000")
    with pytest.raises(AuthError, match="ak not exist"):
        unknown_ak.image("x")


def test_obs_refusals_keep_their_xml_code(connect_sim: Callable[..., ImsClient]) -> None:
    client = connect_sim(sk="not-the-secret-key-0123456789")
    with pytest.raises(AuthError) as listing:
        client.buckets()
    with pytest.raises(AuthError) as head_bucket:
        client.bucket(BUCKET)
    with pytest.raises(AuthError) as head_object:
        client.object_size(BUCKET, "README.txt")
    for error in (listing.value, head_bucket.value, head_object.value):
        assert (error.status, error.code) == (403, "SignatureDoesNotMatch"), str(error)
        assert REQUEST_ID.match(error.request_id or ""), str(error)
        assert "not-the-secret-key" not in str(error)
    with pytest.raises(AuthError, match="InvalidAccessKeyId"):
        connect_sim(ak="NOSUCHAK0000000000000").buckets()


def test_throttling_is_retried_then_raised(
    connect_sim: Callable[..., ImsClient], control: httpx.Client, sent: Any
) -> None:
    control.post("/faults", json={"kind": "throttle", "path": LIST, "count": None}).raise_for_status()
    with pytest.raises(ThrottledError) as raised:
        list(connect_sim(retry=fast_retry(3)).iter_images(max_items=1))
    assert (raised.value.status, raised.value.code) == (429, "APIGW.0308")
    assert [f["hits"] for f in control.get("/faults").json()["faults"]] == [3] and len(sent) == 3


@pytest.mark.parametrize(
    ("status", "body", "code"),
    [
        (500, '{"error_msg": "Internal server error.", "error_code": "APIGW.0601"}', "APIGW.0601"),
        (503, '{"error": {"code": "IMG.0999", "message": "backend busy"}}', "IMG.0999"),
        (502, "<html><body>Bad Gateway</body></html>", "502"),
    ],
)
def test_server_errors_are_retried_then_raised(
    connect_sim: Callable[..., ImsClient], control: httpx.Client, status: int, body: str, code: str
) -> None:
    fault = {"kind": "response", "method": "GET", "path": "^/v2/images/", "status": status, "body": body}
    control.post("/faults", json=fault | {"count": None}).raise_for_status()
    with pytest.raises(ServerError) as raised:
        connect_sim(retry=fast_retry(2)).image("any-image")
    assert (raised.value.status, raised.value.code) == (status, code)
    assert REQUEST_ID.match(raised.value.request_id or "")
    assert control.get("/faults").json()["faults"][0]["hits"] == 2


GZIP = {"Content-Encoding": "gzip"}


@pytest.mark.parametrize(
    ("path", "body", "headers", "call"),
    [
        ("^/v1/cloudimages/job/", "<html>gateway maintenance</html>", {}, lambda c: c.job_progress("j")),
        (LIST, '{"images": [tru', {}, lambda c: list(c.iter_images())),
        (LIST, '{"images": "none"}', {}, lambda c: list(c.iter_images())),
        ("^/v2/images/", "[1, 2]", {}, lambda c: c.image("i")),
        ("^/v2/images/", "not gzip at all", GZIP, lambda c: c.image("i")),
        ("^/$", "not gzip at all", {"Content-Type": "application/xml", **GZIP}, lambda c: c.buckets()),
    ],
    ids=["html", "truncated-json", "no-images-list", "not-an-object", "undecodable", "undecodable-obs"],
)
def test_an_unreadable_success_body_is_a_transport_error(
    connect_sim: Callable[..., ImsClient],
    control: httpx.Client,
    path: str,
    body: str,
    headers: dict[str, str],
    call: Callable[[ImsClient], Any],
) -> None:
    fault = {"kind": "response", "path": path, "status": 200, "body": body, "headers": headers, "count": None}
    control.post("/faults", json=fault).raise_for_status()
    with pytest.raises(TransportError) as raised:
        call(connect_sim(retry=fast_retry(3)))
    assert raised.value.sent and raised.value.method in ("GET", "HEAD")
    assert isinstance(raised.value, ImsNbError)  # never a bare httpx exception
    hits = control.get("/faults").json()["faults"][0]["hits"]
    if headers:  # a body httpx cannot even decode
        assert isinstance(raised.value.__cause__, httpx.DecodingError)
    else:  # a readable body that is not what was asked: a safe GET is asked again, up to the policy's tries
        assert isinstance(raised.value, MalformedAnswerError) and hits == 3


def test_one_malformed_answer_is_asked_again_and_the_listing_completes(
    connect_sim: Callable[..., ImsClient], control: httpx.Client
) -> None:
    clean = connect_sim().images()
    control.post("/faults", json={"kind": "response", "path": LIST, "status": 200, "body": '{"images": [tru'})
    again = connect_sim(retry=fast_retry(3)).images()
    assert control.get("/faults").json()["faults"] == [] or control.get("/faults").json()["faults"][0]["hits"] == 1
    assert list(again["id"]) == list(clean["id"])


def _projects(answer: dict[str, Any]) -> list[str]:
    """``iam_read``'s ``parse`` of the tests: the projects' names, or a malformed answer."""
    if not isinstance(answer.get("projects"), list):
        raise MalformedAnswerError("no projects")
    return [p["name"] for p in answer["projects"]]


@pytest.mark.parametrize("twin", ["sync", "async"])
def test_iam_read_parses_its_object_and_asks_again_when_parse_finds_it_malformed(
    connect_sim: Callable[..., ImsClient], control: httpx.Client, twin: str
) -> None:
    client, path = connect_sim(retry=fast_retry(3), transport=None), "/v3/auth/projects"  # an async twin can use it

    def read(parse: Callable[[dict[str, Any]], Any] | None = None) -> Any:
        if twin == "sync":
            return client.iam_read(path) if parse is None else client.iam_read(path, parse)

        async def read_async() -> Any:
            async with client.to_async() as aio:
                return await (aio.iam_read(path) if parse is None else aio.iam_read(path, parse))

        return asyncio.run(read_async())

    names = [p["name"] for p in read()["projects"]]
    control.post("/faults", json={"kind": "response", "path": "^/v3/auth/projects", "status": 200, "body": "{}"})
    assert read(_projects) == names and control.get("/faults").json()["faults"] == []  # spent
    control.post("/faults", json={"kind": "response", "path": "^/v3/auth/projects", "status": 200, "body": "{}",
                                  "count": None})  # fmt: skip
    assert read() == {}  # no parse: the object as it came
    with pytest.raises(MalformedAnswerError, match="^no projects$") as malformed:
        read(_projects)
    assert malformed.value.method == "GET" and malformed.value.url.endswith("/v3/auth/projects")
    assert control.get("/faults").json()["faults"][0]["hits"] == 1 + 3  # the plain read, then three tries


@pytest.mark.parametrize(
    "echo",
    [
        "Authorization: SDK-HMAC-SHA256 Access=AK, SignedHeaders=host, Signature=0a1b2c3d4e5f60718293a4b5c6d7e8f9",
        "header X-Auth-Token: MIIfake-token-value-that-is-long-enough-0123456789abcdef was refused",
        "X-Subject-Token=MIIanother-token-that-is-long-enough-0123456789abcdef",
        "token MIIEpAYJKoZIhvcNAQcCoIIElTCCBJECAQExDTALBglghkgBZQMEAgEwggLdBgkq",
    ],
    ids=["signature", "auth-token", "subject-token", "bare-token"],
)
def test_secrets_a_server_echoes_are_masked_in_errors(sim_client: ImsClient, control: httpx.Client, echo: str) -> None:
    body = '{"error_code": "APIGW.0301", "error_msg": "' + echo + '"}'
    control.post("/faults", json={"kind": "response", "path": "^/v2/images/", "status": 401, "body": body})
    with pytest.raises(AuthError) as raised:
        sim_client.image("any")
    shown = f"{raised.value} {raised.value!r} {raised.value.message}"
    assert "***" in shown
    assert not re.search(r"MII[A-Za-z0-9_\-]{20,}|Signature=[0-9a-f]{8,}", shown), shown


def test_an_echoed_security_token_is_masked_in_errors(
    connect_sim: Callable[..., ImsClient], control: httpx.Client
) -> None:
    client = connect_sim(security_token=SECURITY_TOKEN)
    body = '{"error_code": "APIGW.0301", "error_msg": "invalid X-Security-Token ' + SECURITY_TOKEN + '"}'
    control.post("/faults", json={"kind": "response", "path": "^/v2/images/", "status": 401, "body": body})
    with pytest.raises(AuthError) as raised:
        client.image("any")
    assert SECURITY_TOKEN not in f"{raised.value} {raised.value!r} {raised.value.message}"


def closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def exercise_everything(
    connect_sim: Callable[..., ImsClient],
    users: dict[str, Any],
    control: httpx.Client,
    exportable: list[dict[str, Any]],
) -> list[BaseException]:
    """Every path that logs or raises: AK/SK with a security token, password logins, refusals, retries, faults."""
    raised: list[BaseException] = []

    def expect(error: type[BaseException], call: Callable[[], Any]) -> None:
        with pytest.raises(error) as caught:
            call()
        raised.append(caught.value)

    operator, auditor = users["users"]
    client = connect_sim(security_token=SECURITY_TOKEN, page_size=50, retry=fast_retry())
    assert len(list(client.iter_images())) == 200
    job_id = client.export_image(exportable[0]["id"], f"{BUCKET}:s/{exportable[0]['id']}.vhd", "vhd")
    assert client.job(job_id)["status"] == client.job_progress(job_id)["status"] == "INIT"
    assert client.bucket("ims-archive-cold").exists and len(client.buckets()) == 6
    assert client.object_size(BUCKET, "README.txt") == 512
    iso = next(client.iter_images(virtual_env_type="IsoImage"))
    expect(ApiError, lambda: client.export_image(iso["id"], f"{BUCKET}:iso.vhd", "vhd"))
    control.post("/faults", json={"kind": "response", "path": "^/v2/images/", "status": 503, "count": None})
    expect(ServerError, lambda: client.image("x"))
    control.post("/faults", json={"kind": "drop", "method": "POST", "count": None})
    expect(OutcomeUnknownError, lambda: client.export_image(exportable[1]["id"], f"{BUCKET}:d.vhd", "vhd"))
    control.delete("/faults")
    expect(TransportError, lambda: connect_sim(endpoint=closed_port(), retry=fast_retry(2)).image("x"))
    expect(AuthError, lambda: connect_sim(sk=auditor["sk"]).image("x"))
    expect(AuthError, lambda: connect_sim(sk=auditor["sk"]).bucket(BUCKET))
    login = {"ak": None, "sk": None, "project_id": None, "domain": users["domain_name"]}
    auditor_client = connect_sim(username=auditor["name"], password=auditor["password"], **login)
    image = exportable[2]["id"]
    expect(AuthError, lambda: auditor_client.export_image(image, f"{BUCKET}:no-permission.vhd", "vhd"))
    wrong_password = connect_sim(username=operator["name"], password=auditor["password"], **login)
    expect(AuthError, lambda: wrong_password.image("x"))
    by_password = connect_sim(username=operator["name"], password=operator["password"], **login)
    list(by_password.iter_images(max_items=3))
    control.post("/tokens/expire")
    by_password.job_progress(job_id)
    return raised


def log_text(record: logging.LogRecord) -> str:
    exc = logging.Formatter().formatException(record.exc_info) if record.exc_info else ""
    return f"{record.getMessage()} {record.args!r} {record.exc_text or ''} {exc}"


def leaked(records: list[logging.LogRecord], secrets: set[str]) -> list[str]:
    """Where a secret shows in a record: logger, level and the record's first word (never the secret itself)."""
    return [
        f"{r.name} {r.levelname} {r.getMessage().split(' ', 1)[0]}"
        for r in records
        if any(secret in log_text(r) for secret in secrets)
    ]


@pytest.fixture()
def everything_logged(
    connect_sim: Callable[..., ImsClient],
    sim_users: dict[str, Any],
    control: httpx.Client,
    exportable: list[dict[str, Any]],
    sent: Any,
    caplog: pytest.LogCaptureFixture,
) -> tuple[list[logging.LogRecord], list[BaseException], set[str]]:
    """Run every path with DEBUG logging on for ims_nb, httpx and httpcore; returns records, errors and secrets."""
    caplog.set_level(logging.DEBUG)
    for name in ("ims_nb", "httpx", "httpcore"):
        caplog.set_level(logging.DEBUG, logger=name)
    errors = exercise_everything(connect_sim, sim_users, control, exportable)
    tokens = {r.headers["X-Auth-Token"] for r in sent.requests if "X-Auth-Token" in r.headers}
    assert len(tokens) == 3  # operator twice (a login, a renewal), auditor once
    secrets = tokens | {SECURITY_TOKEN} | {u[k] for u in sim_users["users"] for k in ("sk", "password")}
    return list(caplog.records), errors, secrets


def test_no_secret_in_errors_or_in_ims_nb_and_httpx_logs(
    everything_logged: tuple[list[logging.LogRecord], list[BaseException], set[str]],
) -> None:
    records, errors, secrets = everything_logged
    assert {r.name.split(".")[0] for r in records} >= {"ims_nb", "httpx", "httpcore"}  # logging was really on
    assert len(errors) == 8 and all(isinstance(e, ImsNbError) for e in errors)
    for error in errors:
        shown = f"{error} {error!r} {error.__dict__}"
        assert not [s for s in secrets if s in shown], shown
    leaks = [leak for leak in leaked(records, secrets) if not leak.startswith("httpcore")]
    assert leaks == []


def test_no_secret_in_httpcore_debug_logs(
    everything_logged: tuple[list[logging.LogRecord], list[BaseException], set[str]],
) -> None:
    records, _, secrets = everything_logged
    leaks = [leak for leak in leaked(records, secrets) if leak.startswith("httpcore")]
    assert leaks == []
