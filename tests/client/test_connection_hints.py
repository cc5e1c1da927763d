"""Connection failures name the host and port and what to check; a mistyped region is an error on a simulator too."""

from __future__ import annotations

import asyncio
import socket

import httpx
import pytest

import ims_nb
from ims_nb import ConfigError, RetryPolicy, TransportError
from ims_nb.client.config import ENV_REGION

CREDENTIALS = {"ak": "AK-HINTS", "sk": "sk-hints-secret", "project_id": "0" * 32}
ONCE = RetryPolicy(max_attempts=1)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _failure(endpoint: str, **options: object) -> str:
    client = ims_nb.connect(endpoint=endpoint, retry=ONCE, **CREDENTIALS, **options)  # type: ignore[arg-type]
    with client, pytest.raises(TransportError) as raised:
        client.images(max_items=1)
    assert raised.value.__cause__ is not None  # raise ... from exc
    message = str(raised.value)
    assert CREDENTIALS["sk"] not in message
    return message


def test_a_refused_connection_names_host_port_and_says_check_it_runs() -> None:
    port = _closed_port()
    message = _failure(f"http://127.0.0.1:{port}")
    assert f"127.0.0.1:{port}" in message and "refused" in message
    assert "simulator running" in message and "port" in message


def test_a_refused_connection_says_the_same_to_the_async_client() -> None:
    port = _closed_port()

    async def go() -> str:
        client = ims_nb.connect_async(endpoint=f"http://127.0.0.1:{port}", retry=ONCE, **CREDENTIALS)
        async with client:
            with pytest.raises(TransportError) as raised:
                await client.images(max_items=1)
        return str(raised.value)

    message = asyncio.run(go())
    assert f"127.0.0.1:{port}" in message and "simulator running" in message


def test_an_unknown_host_says_check_the_region_and_endpoint() -> None:
    message = _failure("https://ims.no-such-region.invalid")
    assert "ims.no-such-region.invalid:443" in message
    assert "DNS" in message and "check the region and the endpoint" in message


def test_a_timeout_says_check_the_network_and_proxy() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectTimeout("timed out", request=request)

    message = _failure("https://ims.example.com:8443", transport=httpx.MockTransport(handler))
    assert "ims.example.com:8443" in message and "did not answer in time" in message and "proxy" in message


def test_a_mistyped_region_in_the_environment_is_an_error_on_the_simulator_fallback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(ENV_REGION, "cn-nort-4")
    with pytest.raises(ConfigError) as raised:
        ims_nb.connect()
    message = str(raised.value)
    assert "'cn-nort-4'" in message and ENV_REGION in message and "cn-north-4" in message
