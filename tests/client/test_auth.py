"""The httpx auth flows, driven by hand: headers added, signatures that verify, secrets hidden."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx

from ims_nb import signing
from ims_nb.client.auth import AkSkAuth, ObsAuth, TokenAuth

AK, SK = "AKTESTEXAMPLE0000001", "SKtestExampleSecretKey0000000000000000001"
PROJECT = "0123456789abcdef0123456789abcdef"
FIXED = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)


def _flow(auth: httpx.Auth, request: httpx.Request) -> httpx.Request:
    flow = auth.sync_auth_flow(request)
    signed = next(flow)
    return signed


def test_aksk_flow_reproduces_the_sdk_export_vector() -> None:
    request = httpx.Request(
        "POST",
        "https://ims.cn-north-4.myhuaweicloud.com/v1/cloudimages/11111111-2222-3333-4444-555555555555/file",
        content=b'{"bucket_url": "my-bucket:exports/img.qcow2", "file_format": "qcow2"}',
        headers={
            "Content-Type": "application/json;charset=utf-8",
            "User-Agent": "huaweicloud-usdk-python/3.0",
        },
    )
    signed = _flow(AkSkAuth(AK, SK, project_id=PROJECT, clock=lambda: FIXED), request)
    assert signed.headers["X-Sdk-Date"] == "20240102T030405Z"
    assert signed.headers["X-Project-Id"] == PROJECT
    assert signed.headers["Authorization"].endswith(
        "Signature=3ae444c68b02b3813294fe9ed35564dfb6652f18957cf97ea066ab7ed5fc2309"
    )


def _verify(request: httpx.Request) -> bool:
    parsed = signing.parse_authorization(request.headers["Authorization"])
    canonical = signing.canonical_request(
        request.method,
        request.url.raw_path.decode().split("?")[0],
        signing.parse_query(request.url.query.decode()),
        dict(request.headers),
        parsed.signed_headers,
        signing.payload_hash(request.content),
    )
    to_sign = signing.string_to_sign(canonical, request.headers["X-Sdk-Date"])
    return signing.signature(SK, to_sign) == parsed.signature


def test_aksk_signs_the_query_httpx_actually_sends() -> None:
    request = httpx.Request(
        "GET",
        "http://127.0.0.1:8000/v2/cloudimages",
        params={"name": "my image/1", "limit": 2, "__imagetype": "private"},
    )
    signed = _flow(AkSkAuth(AK, SK, security_token="TOKEN==", clock=lambda: FIXED), request)
    assert "x-security-token" in signed.headers["Authorization"]
    assert "accept-encoding" not in signed.headers["Authorization"]
    assert _verify(signed)


def test_secrets_are_masked_in_reprs() -> None:
    for auth in (
        AkSkAuth(AK, SK, security_token="SECRETTOKEN"),
        TokenAuth("SECRETTOKEN", project_id=PROJECT),
        ObsAuth(AK, SK, security_token="SECRETTOKEN"),
    ):
        text = repr(auth)
        assert SK not in text and "SECRETTOKEN" not in text


def test_token_flow_sets_the_header() -> None:
    signed = _flow(TokenAuth("T0K", project_id=PROJECT), httpx.Request("GET", "http://h/v2/cloudimages"))
    assert signed.headers["X-Auth-Token"] == "T0K"
    assert signed.headers["X-Project-Id"] == PROJECT
    assert "Authorization" not in signed.headers


def test_obs_flow_matches_the_esdk_vector_shape() -> None:
    request = httpx.Request("GET", "http://127.0.0.1:9000/mybucket?location")
    signed = _flow(ObsAuth(AK, SK, clock=lambda: FIXED), request)
    assert signed.headers["Date"] == "Tue, 02 Jan 2024 03:04:05 GMT"
    to_sign = "GET\n\n\nTue, 02 Jan 2024 03:04:05 GMT\n/mybucket?location"
    assert signed.headers["Authorization"] == f"OBS {AK}:{signing.obs_signature(SK, to_sign)}"


def test_obs_v2_flow_uses_aws_prefix_and_token_header() -> None:
    request = httpx.Request("HEAD", "http://127.0.0.1:9000/mybucket/dir/a%20b.qcow2")
    signed = _flow(ObsAuth(AK, SK, security_token="TT", signature_type="v2", clock=lambda: FIXED), request)
    assert signed.headers["x-amz-security-token"] == "TT"
    to_sign = "HEAD\n\n\nTue, 02 Jan 2024 03:04:05 GMT\nx-amz-security-token:TT\n/mybucket/dir/a%20b.qcow2"
    assert signed.headers["Authorization"] == f"AWS {AK}:{signing.obs_signature(SK, to_sign)}"
