"""Where a client connects and as whom: the credentials chain, regions, endpoints, and secrets kept out of sight."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import httpx
import pytest

import ims_nb
from ims_nb.client import config
from ims_nb.client.auth import AkSkAuth, ObsAuth, PasswordAuth, TokenAuth
from ims_nb.client.config import Credentials, Password
from ims_nb.client.wire import Token
from ims_nb.errors import ConfigError, SimulatorWarning
from ims_nb.sim import Simulator

HTTPS = "https://ims.example.com"


def write_credentials(path: Path, body: str) -> Path:
    path.write_text(body, encoding="utf-8")
    return path


def sim_line(sim: Simulator) -> str:
    return json.dumps(sim.info.as_json_dict())


# --- the chain --------------------------------------------------------------------------------------


def test_arguments_win_over_environment_and_file(monkeypatch: pytest.MonkeyPatch, clean_env: Path) -> None:
    monkeypatch.setenv(config.ENV_AK, "ENVAK")
    monkeypatch.setenv(config.ENV_SK, "env-secret-key")
    write_credentials(clean_env, "[basic]\nak = FILEAK\nsk = file-secret-key\n")
    with ims_nb.connect(ak="ARGAK", sk="arg-secret-key", project_id="p1", endpoint=HTTPS) as client:
        credentials = client.settings.credentials
        assert credentials is not None
        assert (credentials.ak, credentials.sk, credentials.source) == ("ARGAK", "arg-secret-key", "arguments")
        assert client.project_id == "p1"


def test_environment_wins_over_the_credentials_file(monkeypatch: pytest.MonkeyPatch, clean_env: Path) -> None:
    monkeypatch.setenv(config.ENV_AK, "ENVAK")
    monkeypatch.setenv(config.ENV_SK, "env-secret-key")
    monkeypatch.setenv(config.ENV_PROJECT_ID, "env-project")
    monkeypatch.setenv(config.ENV_SECURITY_TOKEN, "env-security-token")
    write_credentials(clean_env, "[basic]\nak = FILEAK\nsk = file-secret-key\n")
    with ims_nb.connect(endpoint=HTTPS) as client:
        assert client.settings.credentials == Credentials(
            "ENVAK", "env-secret-key", "env-project", "env-security-token", config.SOURCE_ENVIRONMENT
        )
    with ims_nb.connect(project_id="arg-project", endpoint=HTTPS) as client:
        assert client.project_id == "arg-project"  # an argument completes credentials found elsewhere


def test_credentials_file_wins_over_the_simulator_line(
    monkeypatch: pytest.MonkeyPatch, clean_env: Path, sim: Simulator
) -> None:
    monkeypatch.setenv(config.ENV_SIMULATOR, sim_line(sim))
    write_credentials(
        clean_env, "[basic]\nak = FILEAK\nsk = file-secret-key\nproject_id = file-project\nsecurity_token = stok\n"
    )
    with ims_nb.connect(endpoint=HTTPS) as client:
        assert client.settings.credentials == Credentials(
            "FILEAK", "file-secret-key", "file-project", "stok", config.SOURCE_FILE
        )
        assert "SIMULATOR" not in repr(client)


def test_a_file_without_a_basic_section_is_passed_over(
    monkeypatch: pytest.MonkeyPatch, clean_env: Path, sim: Simulator
) -> None:
    write_credentials(clean_env, "[other]\nak = FILEAK\nsk = file-secret-key\n")
    monkeypatch.setenv(config.ENV_SIMULATOR, sim_line(sim))
    with pytest.warns(SimulatorWarning), ims_nb.connect() as client:
        assert client.settings.is_simulator


def test_the_simulator_line_comes_before_an_embedded_simulator(
    monkeypatch: pytest.MonkeyPatch, sim: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(config.ENV_SIMULATOR, sim_line(sim))
    caplog.set_level(logging.INFO, logger="ims_nb")
    with pytest.warns(SimulatorWarning, match="SIMULATOR") as warned, ims_nb.connect() as client:
        assert client.settings.simulator is None  # nothing new was started
        assert client.endpoints.ims == client.endpoints.obs == sim.endpoint
        assert client.project_id == sim.info.project_id
        assert "SIMULATOR" in repr(client)
        assert next(client.iter_images(max_items=1))["id"]
    assert warned[0].filename == __file__  # the warning points at the caller of connect()
    notices = [r for r in caplog.records if "SIMULATOR" in r.getMessage()]
    assert [r.levelno for r in notices] == [logging.INFO]  # the warning is the notice; the log line stays quiet


def test_no_credentials_at_all_start_an_embedded_simulator(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ims_nb")
    with pytest.warns(SimulatorWarning, match="no credentials configured") as warned:
        client = ims_nb.connect()
    try:
        embedded = client.settings.simulator
        assert isinstance(embedded, Simulator)
        assert client.endpoints.ims == embedded.endpoint and client.region == "cn-north-4"
        assert "SIMULATOR" in repr(client) and "SIMULATOR" in str(warned[0].message)
        assert warned[0].filename == __file__
        assert any("SIMULATOR" in r.getMessage() for r in caplog.records if r.name == "ims_nb")
        assert len(list(client.iter_images(max_items=3))) == 3
        assert embedded.info.sk not in repr(client) + str(warned[0].message) + caplog.text
    finally:
        client.close()
    assert client.settings.simulator is None
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{embedded.endpoint}/_sim/health", timeout=1)  # stopped with the client


def test_environment_credentials_work_end_to_end(monkeypatch: pytest.MonkeyPatch, fresh_sim: Simulator) -> None:
    info = fresh_sim.info
    monkeypatch.setenv(config.ENV_AK, info.ak)
    monkeypatch.setenv(config.ENV_SK, info.sk)
    monkeypatch.setenv(config.ENV_PROJECT_ID, info.project_id)
    with ims_nb.connect(endpoint=info.endpoint) as client:
        assert [i["id"] for i in client.iter_images(max_items=2)]
        assert client.bucket("ims-archive-warm").storage_class == "WARM"


# --- refusals ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "environment", "file", "match"),
    [
        ({"ak": "AK"}, {}, None, "both ak and sk"),
        ({"sk": "secret-key"}, {}, None, "both ak and sk"),
        ({}, {config.ENV_AK: "AK"}, None, config.ENV_SK),
        ({}, {config.ENV_SK: "secret-key"}, None, config.ENV_AK),
        ({}, {}, "[basic]\nak = AK\n", "without both ak and sk"),
        ({}, {}, "[basic]\nsk = secret-key\n", "without both ak and sk"),
    ],
    ids=["arg-ak", "arg-sk", "env-ak", "env-sk", "file-ak", "file-sk"],
)
def test_half_a_credential_pair_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch,
    clean_env: Path,
    arguments: dict[str, str],
    environment: dict[str, str],
    file: str | None,
    match: str,
) -> None:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    if file is not None:
        write_credentials(clean_env, file)
    with pytest.raises(ConfigError, match=match) as raised:
        ims_nb.connect(endpoint=HTTPS, **arguments)
    assert "secret-key" not in str(raised.value)


def test_an_unknown_region_lists_the_33_known_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    assert len(config.REGIONS) == len(set(config.REGIONS)) == 33
    with pytest.raises(ConfigError, match="unknown region 'mars-north-1'") as raised:
        ims_nb.connect("mars-north-1", ak="AK", sk="secret-key")
    assert all(region in str(raised.value) for region in config.REGIONS)
    with pytest.raises(ConfigError, match="known regions"):
        ims_nb.connect("mars-north-1")  # refused before any simulator is started for it
    monkeypatch.setenv(config.ENV_REGION, "mars-north-1")
    with pytest.raises(ConfigError, match="mars-north-1"):
        ims_nb.connect(ak="AK", sk="secret-key")


def test_the_region_picks_the_endpoints(monkeypatch: pytest.MonkeyPatch) -> None:
    with ims_nb.connect(ak="AK", sk="secret-key") as client:
        assert client.region == config.DEFAULT_REGION
    monkeypatch.setenv(config.ENV_REGION, "ap-southeast-3")
    with ims_nb.connect(ak="AK", sk="secret-key") as client:
        assert client.endpoints.ims == "https://ims.ap-southeast-3.myhuaweicloud.com"
        assert client.endpoints.iam == "https://iam.ap-southeast-3.myhuaweicloud.com"
        assert client.endpoints.obs == "https://obs.ap-southeast-3.myhuaweicloud.com"
    with ims_nb.connect("eu-west-101", ak="AK", sk="secret-key") as client:  # the argument wins
        assert client.region == "eu-west-101" and "eu-west-101" in client.endpoints.ims


@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [
        ("https://ims.example.com/", "https://ims.example.com"),
        ("https://10.1.2.3:8443", "https://10.1.2.3:8443"),
        ("http://127.0.0.1:9000", "http://127.0.0.1:9000"),
        ("http://localhost:9000/", "http://localhost:9000"),
        ("http://[::1]:9000", "http://[::1]:9000"),
    ],
)
def test_an_endpoint_replaces_every_service(endpoint: str, expected: str) -> None:
    with ims_nb.connect("cn-east-3", ak="AK", sk="secret-key", endpoint=endpoint) as client:
        assert (client.endpoints.ims, client.endpoints.iam, client.endpoints.obs) == (expected,) * 3
        assert client.region == "cn-east-3" and expected in repr(client)


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://10.1.2.3:9000",
        "http://ims.example.com",
        "http://192.168.0.1",
        "ftp://ims.example.com",
        "https://",
        "ims",
    ],
)
def test_plain_http_and_non_urls_are_refused(endpoint: str) -> None:
    with pytest.raises(ConfigError, match="plain HTTP|http\\(s\\) URL"):
        ims_nb.connect(ak="AK", sk="secret-key", endpoint=endpoint)


@pytest.mark.parametrize(
    "content",
    [
        b"ak = AK\nsk = secret-key\n",
        b"[basic]\nak = AK\nsk = secret-key\n[basic]\n",
        b"[basic]\nsk = secret-\xff\xfe\n",
    ],
    ids=["no-section-header", "duplicate-section", "not-utf8"],
)
def test_an_unreadable_credentials_file_is_a_config_error(clean_env: Path, content: bytes) -> None:
    clean_env.write_bytes(content)
    with pytest.raises(ConfigError, match="cannot read the credentials file") as raised:
        ims_nb.connect(endpoint=HTTPS)
    assert "secret-key" not in str(raised.value) and str(clean_env) in str(raised.value)


@pytest.mark.parametrize(
    ("arguments", "match"),
    [
        ({"username": "u", "password": "pass-word-1"}, "username, password and domain"),
        ({"username": "u", "password": "pass-word-1", "domain": "d", "ak": "AK"}, "not both"),
        ({"endpoint": "http://127.0.0.1:1"}, "without credentials"),
        ({"ak": "AK", "sk": "secret-key", "colour": "blue"}, "unknown option"),
        ({"ak": "AK", "sk": "secret-key", "page_size": 0}, "page_size"),
        ({"ak": "AK", "sk": "secret-key", "page_size": 1001}, "page_size"),
    ],
)
def test_connect_refuses_inconsistent_arguments(arguments: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match) as raised:
        ims_nb.connect(**arguments)
    assert "pass-word-1" not in str(raised.value) and "secret-key" not in str(raised.value)


def test_the_simulator_line_must_be_well_formed_and_match_the_region(
    monkeypatch: pytest.MonkeyPatch, sim: Simulator
) -> None:
    monkeypatch.setenv(config.ENV_SIMULATOR, '{"endpoint": "http://127.0.0.1:1"}')
    with pytest.raises(ConfigError, match=config.ENV_SIMULATOR):
        ims_nb.connect()
    monkeypatch.setenv(config.ENV_SIMULATOR, sim_line(sim))
    with pytest.raises(ConfigError, match="plays region 'cn-north-4', not 'cn-east-3'"):
        ims_nb.connect("cn-east-3")


# --- secrets ----------------------------------------------------------------------------------------


def test_secrets_stay_out_of_credentials_passwords_and_auths() -> None:
    secrets = ("sk-0123456789", "security-token-123", "pass-word-456", "MIItoken-value-789")
    credentials = Credentials("MYAK", secrets[0], "proj", secrets[1])
    token = Token(secrets[3], 1.0, "proj")
    password_auth = PasswordAuth(lambda: httpx.Request("POST", HTTPS), lambda r: token)
    flow = password_auth.auth_flow(httpx.Request("GET", HTTPS))
    next(flow)  # the login request
    assert flow.send(httpx.Response(201)).headers["X-Auth-Token"] == secrets[3]  # now it holds the token
    shown = [
        credentials,
        Password("me", secrets[2], "dom"),
        token,
        AkSkAuth("MYAK", secrets[0], project_id="proj", security_token=secrets[1]),
        TokenAuth(secrets[3], project_id="proj"),
        ObsAuth("MYAK", secrets[0], security_token=secrets[1]),
        password_auth,
    ]
    text = " ".join(f"{thing!r} {thing!s}" for thing in shown)
    assert not [s for s in secrets if s in text], text
    assert "MYAK" in text and "***" in text
    assert credentials.secrets == (secrets[0], secrets[1])


def test_secrets_stay_out_of_client_reprs(fresh_sim: Simulator) -> None:
    endpoint = fresh_sim.endpoint
    with ims_nb.connect(ak="MYAK", sk="sk-0123456789", security_token="security-token-123", endpoint=endpoint) as c:
        text = f"{c!r} {c!s} {c.settings!r} {c._auth!r}"
    with ims_nb.connect(username="me", password="pass-word-456", domain="dom", endpoint=endpoint) as p:
        text += f"{p!r} {p!s} {p.settings!r} {p._auth!r}"
    assert "sk-0123456789" not in text and "security-token-123" not in text and "pass-word-456" not in text
    assert "MYAK" in text and "me" in text
