"""Transport safety: TLS verification on, turned off only by ``insecure=True`` (with a warning), plain HTTP only to
loopback unless insecure, a private CA through ``ca_bundle``; the simulator binds loopback unless ``--allow-remote``.

A local TLS server (the simulator behind uvicorn, with a self-signed certificate the test makes with ``openssl``)
proves that verification really happens.
"""

from __future__ import annotations

import logging
import shutil
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import certifi
import httpx
import pytest
import uvicorn

import ims_nb
from ims_nb.cli._console import cli_spelling
from ims_nb.cli._main import main
from ims_nb.client import AsyncImsClient, ImsClient
from ims_nb.client.retry import RetryPolicy
from ims_nb.errors import ConfigError, InsecureTransportWarning, TransportError
from ims_nb.sim import Simulator
from ims_nb.sim.server import bind, build_simulation, check_host, info_of
from tests.helpers import RecordingTransport, RequestLog

CREDENTIALS: dict[str, Any] = {"ak": "AKEXAMPLE", "sk": "secret-key-0123456789", "project_id": "p" * 32}


def ssl_context(client: ImsClient | AsyncImsClient) -> ssl.SSLContext:
    """The SSL context the client's own httpx transport connects with."""
    context = client._http._transport._pool._ssl_context  # type: ignore[union-attr]
    assert isinstance(context, ssl.SSLContext)
    return context


def verifies(context: ssl.SSLContext) -> bool:
    return context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


# --- what the clients are built with -------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", [None, "https://ims.example.com", "https://10.1.2.3:8443"])
def test_https_clients_verify_certificates(endpoint: str | None) -> None:
    with ims_nb.connect("cn-north-4", endpoint=endpoint, **CREDENTIALS) as client:
        assert client.endpoints.ims.startswith("https://") and verifies(ssl_context(client))
        twin = client.to_async()
        assert verifies(ssl_context(twin))
    assert verifies(ssl_context(ims_nb.connect_async(endpoint=endpoint, **CREDENTIALS)))


@pytest.mark.parametrize("verify", [False, True, "/etc/ssl/certs/ca-certificates.crt", ssl.create_default_context()])
def test_verify_is_not_an_option(verify: Any) -> None:
    with pytest.raises(ConfigError, match="verify is not an option") as raised:
        ims_nb.connect(endpoint="https://ims.example.com", verify=verify, **CREDENTIALS)
    assert "ca_bundle=PATH" in str(raised.value) and "insecure=True" in str(raised.value)


def test_an_httpx_transport_that_skips_verification_needs_insecure() -> None:
    with pytest.raises(ConfigError, match="does not verify TLS certificates"):
        ims_nb.connect(endpoint="https://ims.example.com", transport=httpx.HTTPTransport(verify=False), **CREDENTIALS)
    with pytest.raises(ConfigError, match="does not verify TLS certificates"):
        ims_nb.connect_async(endpoint="https://ims.example.com", transport=httpx.AsyncHTTPTransport(verify=False),
                             **CREDENTIALS)  # fmt: skip
    ims_nb.connect(endpoint="https://ims.example.com", transport=httpx.HTTPTransport(), **CREDENTIALS).close()
    with pytest.warns(InsecureTransportWarning):
        ims_nb.connect(endpoint="https://ims.example.com", transport=httpx.HTTPTransport(verify=False), insecure=True,
                       **CREDENTIALS).close()  # fmt: skip


@pytest.mark.parametrize("host", ["10.1.2.3", "ims.example.com", "192.168.0.1", "0.0.0.0"])
def test_plain_http_to_another_host_names_it_and_the_flag(host: str) -> None:
    with pytest.raises(ConfigError) as raised:
        ims_nb.connect(endpoint=f"http://{host}:9000", **CREDENTIALS)
    message = str(raised.value)
    assert f"not {host!r}" in message and "insecure=True" in message and "--insecure" in cli_spelling(message)


@pytest.mark.parametrize("endpoint", ["http://127.0.0.1:9000", "http://localhost:9000", "http://[::1]:9000"])
def test_plain_http_to_loopback_needs_no_flag(endpoint: str) -> None:
    with ims_nb.connect(endpoint=endpoint, **CREDENTIALS) as client:  # warnings are errors: none is emitted
        assert client.endpoints.ims == endpoint


def test_insecure_allows_plain_http_with_one_warning_and_one_log_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="ims_nb")
    with pytest.warns(InsecureTransportWarning) as warned:
        client = ims_nb.connect(endpoint="http://10.1.2.3:9000", insecure=True, **CREDENTIALS)
    with client:
        assert client.endpoints.ims == "http://10.1.2.3:9000"
        client.to_async()  # the twin does not warn again
    assert len(warned) == 1 and warned[0].filename == __file__  # points at the caller
    text = str(warned[0].message)
    assert text.startswith("INSECURE (insecure=True): plain HTTP to 10.1.2.3") and "in the clear" in text
    assert [r.getMessage() for r in caplog.records if r.name == "ims_nb"] == [text]


def test_insecure_turns_certificate_verification_off_with_a_warning() -> None:
    with pytest.warns(InsecureTransportWarning, match="TLS certificates of https://ims.example.com are not verified"):
        client = ims_nb.connect(endpoint="https://ims.example.com", insecure=True, **CREDENTIALS)
    with client:
        context = ssl_context(client)
        assert context.verify_mode == ssl.CERT_NONE and not context.check_hostname
    with pytest.warns(InsecureTransportWarning):
        async_client = ims_nb.connect_async(endpoint="https://ims.example.com", insecure=True, **CREDENTIALS)
    assert ssl_context(async_client).verify_mode == ssl.CERT_NONE


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"insecure": "yes"}, "insecure must be True or False"),
        ({"insecure": 1}, "insecure must be True or False"),
        ({"ca_bundle": "/no/such/bundle.pem"}, "is not a file"),
        ({"ca_bundle": 42}, "path of a PEM file"),
        ({"ca_bundle": ""}, "path of a PEM file"),
        ({"ca_bundle": certifi.where(), "insecure": True}, "not both"),
        ({"signing_clock": "now"}, "signing_clock"),
    ],
)
def test_bad_transport_options_are_config_errors(options: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        ims_nb.connect(endpoint="https://ims.example.com", **options, **CREDENTIALS)


def test_a_ca_bundle_that_is_no_pem_is_a_config_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    with pytest.raises(ConfigError, match="holds no usable CA certificate"):
        ims_nb.connect(endpoint="https://ims.example.com", ca_bundle=junk, **CREDENTIALS)


def test_a_ca_bundle_keeps_verification_on() -> None:
    with ims_nb.connect(endpoint="https://ims.example.com", ca_bundle=certifi.where(), **CREDENTIALS) as client:
        assert verifies(ssl_context(client))
        assert ssl_context(client).cert_store_stats()["x509_ca"] > 0


# --- against a real TLS server --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate (and key) for 127.0.0.1, made with the openssl command."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("no openssl command to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


@pytest.fixture(scope="module")
def tls_sim(certificate: tuple[Path, Path]) -> Iterator[dict[str, str]]:
    """The simulator served over TLS on a loopback port: its info, with an https endpoint."""
    cert, key = certificate
    simulation = build_simulation(seed=0, images=20, manual_clock=True)
    sock = bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    config = uvicorn.Config(simulation, log_level="warning", lifespan="off", access_log=False,
                            ssl_certfile=str(cert), ssl_keyfile=str(key))  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.started
    info = info_of(simulation, f"https://127.0.0.1:{port}").as_json_dict()
    yield info
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


def tls_connect(info: dict[str, str], **options: Any) -> ImsClient:
    return ims_nb.connect(info["region"], ak=info["ak"], sk=info["sk"], project_id=info["project_id"],
                          endpoint=info["endpoint"], **options)  # fmt: skip


def test_an_unknown_certificate_is_refused_at_once(tls_sim: dict[str, str]) -> None:
    log = RequestLog()
    fast = RetryPolicy(max_attempts=5, base_delay=0.001, max_delay=0.002)
    with (
        tls_connect(tls_sim, transport=RecordingTransport(log), retry=fast) as client,
        pytest.raises(TransportError) as raised,
    ):
        client.images(max_items=1)
    message = str(raised.value)
    assert "TLS certificate of 127.0.0.1 could not be verified" in message
    assert "ca_bundle=PATH" in message and "insecure=True" in message
    assert not raised.value.sent and len(log) == 1  # no retry mends a certificate
    with tls_connect(tls_sim, retry=fast) as client, pytest.raises(TransportError, match="could not be verified"):
        client.images(max_items=1)  # the client's own transport, as connect() makes it


def test_a_ca_bundle_trusts_a_private_ca(tls_sim: dict[str, str], certificate: tuple[Path, Path]) -> None:
    with tls_connect(tls_sim, ca_bundle=certificate[0]) as client:
        assert len(client.images(max_items=3)) == 3
        assert verifies(ssl_context(client))


def test_insecure_talks_to_it_after_its_warning(tls_sim: dict[str, str]) -> None:
    with pytest.warns(InsecureTransportWarning, match="are not verified"):
        client = tls_connect(tls_sim, insecure=True)
    with client:
        assert len(client.images(max_items=3)) == 3


# --- the command line ------------------------------------------------------------------------------------------


def sim_line(sim: Simulator) -> str:
    import json

    return json.dumps(sim.info.as_json_dict())


def test_cli_insecure_prints_one_warning_line(fresh_sim: Simulator, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["images", "--sim", sim_line(fresh_sim), "--insecure", "--format", "csv", "--max-items", "2"]) == 0
    out, err = capsys.readouterr()
    warnings = [line for line in err.splitlines() if "INSECURE" in line]
    assert warnings == ["ims-nb images: warning: INSECURE (insecure=True): TLS certificates would not be verified "
                        "(these endpoints are plain HTTP to loopback, which needs no flag)"]  # fmt: skip
    assert len(out.splitlines()) == 3


def test_cli_insecure_warns_of_tls_in_a_real_process(tls_sim: dict[str, str], clean_env: Path) -> None:
    import os
    import sys

    env = dict(os.environ, HUAWEICLOUD_SDK_AK=tls_sim["ak"], HUAWEICLOUD_SDK_SK=tls_sim["sk"])
    command = [sys.executable, "-m", "ims_nb", "images", "--endpoint", tls_sim["endpoint"], "--project-id",
               tls_sim["project_id"], "--format", "csv", "--max-items", "2"]  # fmt: skip
    refused = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "could not be verified" in refused.stderr and "--insecure" in refused.stderr
    allowed = subprocess.run([*command, "--insecure"], env=env, capture_output=True, text=True, timeout=60)
    assert allowed.returncode == 0, allowed.stderr
    assert allowed.stderr.splitlines() == [
        f"ims-nb images: warning: INSECURE (insecure=True): the TLS certificates of {tls_sim['endpoint']} are not "
        "verified: anyone on the way can read and change the requests"
    ]
    assert len(allowed.stdout.splitlines()) == 3


def test_cli_plain_http_to_another_host_exits_2_naming_the_flag(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HUAWEICLOUD_SDK_SK", "secret-key-0123456789")
    assert main(["images", "--endpoint", "http://10.1.2.3:9000", "--ak", "AKEXAMPLE"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'10.1.2.3'" in err and "--insecure" in err


# --- the simulator binds loopback ------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_the_simulator_binds_loopback(host: str) -> None:
    check_host(host, allow_remote=False)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "10.0.0.1", "example.com", "::ffff:10.0.0.1"])
def test_the_simulator_refuses_another_address_without_allow_remote(host: str) -> None:
    with pytest.raises(ValueError, match="--allow-remote"):
        check_host(host, allow_remote=False)
    check_host(host, allow_remote=True)


def test_the_embedded_simulator_never_binds_another_address() -> None:
    with pytest.raises(ValueError, match="loopback only"):
        Simulator(host="0.0.0.0")


@pytest.mark.parametrize("host", ["0.0.0.0", "::"])
def test_ims_nb_sim_refuses_another_address(host: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "--host", host]) == 2
    err = capsys.readouterr().err
    assert f"refusing to bind {host}" in err and "--allow-remote" in err
