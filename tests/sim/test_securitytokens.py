"""The simulator's IAM temporary credentials (``POST /v3.0/OS-CREDENTIAL/securitytokens``): the answer's shape,
the temporary AK accepted by the IMS gateway and by OBS only with its own, unexpired security token, refusals,
and the official SDKs (``huaweicloudsdkims``, ``esdk-obs-python``) signing with them unchanged."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.http.http_config import HttpConfig
from huaweicloudsdkims.v2 import ImsClient, ListImagesRequest
from obs import ObsClient

from ims_nb.client.auth import AkSkAuth, ObsAuth, TokenAuth
from ims_nb.sim import Simulator

SECURITYTOKENS = "/v3.0/OS-CREDENTIAL/securitytokens"
IMAGES = "/v2/cloudimages"
BUCKET = "ims-exports-cn-north-4"
IAM_TIME = "%Y-%m-%dT%H:%M:%S.%fZ"


def _body(duration: object = None, methods: object = ("token",)) -> dict[str, Any]:
    token = {} if duration is None else {"duration_seconds": duration}
    return {"auth": {"identity": {"methods": list(methods) if isinstance(methods, tuple) else methods,
                                  "token": token}}}  # fmt: skip


@pytest.fixture()
def iam_token(fresh_sim: Simulator) -> str:
    """A project-scoped IAM token of the operator, from a password login."""
    creds = httpx.get(f"{fresh_sim.endpoint}/_sim/credentials").raise_for_status().json()
    user = creds["users"][0]
    login = {"auth": {
        "identity": {"methods": ["password"], "password": {
            "user": {"name": user["name"], "password": user["password"], "domain": {"name": creds["domain_name"]}}}},
        "scope": {"project": {"name": creds["region"]}},
    }}  # fmt: skip
    response = httpx.post(f"{fresh_sim.endpoint}/v3/auth/tokens", json=login)
    assert response.status_code == 201
    return response.headers["X-Subject-Token"]


@pytest.fixture()
def iam(fresh_sim: Simulator, iam_token: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fresh_sim.endpoint, auth=TokenAuth(iam_token)) as client:
        yield client


@pytest.fixture()
def credential(iam: httpx.Client) -> dict[str, str]:
    response = iam.post(SECURITYTOKENS, json=_body(3600))
    assert response.status_code == 201, response.text
    return dict(response.json()["credential"])


def _ims(sim: Simulator, credential: dict[str, str], token: str | None) -> httpx.Client:
    auth = AkSkAuth(credential["access"], credential["secret"], project_id=sim.info.project_id, security_token=token)
    return httpx.Client(base_url=sim.endpoint, auth=auth)


def _obs(sim: Simulator, credential: dict[str, str], token: str | None, signature_type: str = "obs") -> httpx.Client:
    auth = ObsAuth(credential["access"], credential["secret"], security_token=token, signature_type=signature_type)
    return httpx.Client(base_url=sim.endpoint, auth=auth)


def _gateway_code(response: httpx.Response) -> tuple[int, str, str]:
    body = response.json()
    return response.status_code, body["error_code"], body["error_msg"]


def _obs_code(response: httpx.Response) -> tuple[int, str | None]:
    return response.status_code, response.headers.get("x-obs-error-code")


def test_the_answer_has_the_documented_shape_and_the_asked_duration(iam: httpx.Client) -> None:
    for asked, expected in ((None, 900), (900, 900), (3600, 3600), (86400, 86400)):
        before = time.time()
        response = iam.post(SECURITYTOKENS, json=_body(asked))
        assert response.status_code == 201, response.text
        body = response.json()
        assert set(body) == {"credential"}
        credential = body["credential"]
        assert set(credential) == {"access", "secret", "securitytoken", "expires_at"}
        assert all(isinstance(value, str) and value for value in credential.values())
        assert len(credential["access"]) == 20 and credential["access"].isalnum()
        expires = datetime.strptime(credential["expires_at"], IAM_TIME).replace(tzinfo=UTC).timestamp()
        assert before + expected - 1 <= expires <= time.time() + expected + 1, (asked, credential["expires_at"])


def test_each_answer_is_a_new_key(iam: httpx.Client) -> None:
    first, second = (iam.post(SECURITYTOKENS, json=_body()).json()["credential"] for _ in range(2))
    assert all(first[name] != second[name] for name in ("access", "secret", "securitytoken"))


def test_an_ak_sk_signed_caller_gets_them_too(ims: httpx.Client) -> None:
    assert ims.post(SECURITYTOKENS, json=_body()).status_code == 201


@pytest.mark.parametrize(
    "body",
    [_body(899), _body(86401), _body("900"), _body(True), _body(900.5), _body(methods=("password",)),
     _body(methods=("assume_role",)), {"auth": {}}, {"auth": {"identity": {"methods": ["token"], "token": []}}}],
)  # fmt: skip
def test_a_bad_body_is_refused_in_the_iam_shape(iam: httpx.Client, body: dict[str, Any]) -> None:
    response = iam.post(SECURITYTOKENS, json=body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == 400 and response.json()["error"]["title"] == "Bad Request"
    assert iam.post(SECURITYTOKENS, content=b"{not json").status_code == 400


def test_without_a_token_or_with_an_expired_one_there_are_none(fresh_sim: Simulator, iam: httpx.Client) -> None:
    assert _gateway_code(httpx.post(fresh_sim.endpoint + SECURITYTOKENS, json=_body()))[:2] == (401, "APIGW.0301")
    httpx.post(f"{fresh_sim.endpoint}/_sim/tokens/expire").raise_for_status()
    assert _gateway_code(iam.post(SECURITYTOKENS, json=_body()))[:2] == (401, "APIGW.0307")


def test_the_temporary_ak_signs_ims_and_obs_requests_with_its_token(
    fresh_sim: Simulator, credential: dict[str, str]
) -> None:
    token = credential["securitytoken"]
    with _ims(fresh_sim, credential, token) as ims:
        assert ims.get(IMAGES, params={"limit": 1}).status_code == 200
    for signature_type in ("obs", "v2"):
        with _obs(fresh_sim, credential, token, signature_type) as obs:
            assert obs.head(f"/{BUCKET}").status_code == 200, signature_type
            assert obs.head(f"/{BUCKET}/README.txt").status_code == 200, signature_type


def test_without_its_own_token_the_temporary_ak_is_refused(
    fresh_sim: Simulator, iam: httpx.Client, credential: dict[str, str]
) -> None:
    other = iam.post(SECURITYTOKENS, json=_body()).json()["credential"]["securitytoken"]
    for token, word in ((None, "missing"), (other, "wrong")):
        with _ims(fresh_sim, credential, token) as ims:
            status, code, message = _gateway_code(ims.get(IMAGES, params={"limit": 1}))
            assert (status, code) == (401, "APIGW.0301") and f"security token is {word}" in message
        with _obs(fresh_sim, credential, token) as obs:
            assert _obs_code(obs.head(f"/{BUCKET}")) == (403, "InvalidAccessKeyId")
            assert "security token is invalid" in obs.get(f"/{BUCKET}").text
    info = fresh_sim.info  # a permanent AK ignores a security token
    with httpx.Client(base_url=info.endpoint, auth=ObsAuth(info.ak, info.sk, security_token=other)) as obs:
        assert obs.head(f"/{BUCKET}").status_code == 200


def test_an_expired_temporary_ak_is_refused(fresh_sim: Simulator, credential: dict[str, str]) -> None:
    token = credential["securitytoken"]
    httpx.post(f"{fresh_sim.endpoint}/_sim/tokens/expire").raise_for_status()
    with _ims(fresh_sim, credential, token) as ims:
        status, code, message = _gateway_code(ims.get(IMAGES, params={"limit": 1}))
        assert (status, code) == (401, "APIGW.0307") and "security token expires" in message
    with _obs(fresh_sim, credential, token) as obs:
        assert _obs_code(obs.head(f"/{BUCKET}/README.txt")) == (403, "InvalidAccessKeyId")


def test_a_reset_forgets_the_temporary_aks(fresh_sim: Simulator, credential: dict[str, str]) -> None:
    httpx.post(f"{fresh_sim.endpoint}/_sim/reset", json={"seed": 0, "images": 200}).raise_for_status()
    with _obs(fresh_sim, credential, credential["securitytoken"]) as obs:
        assert _obs_code(obs.head(f"/{BUCKET}")) == (403, "InvalidAccessKeyId")


def test_the_temporary_key_never_shows_its_secrets(fresh_sim: Simulator, credential: dict[str, str]) -> None:
    key = fresh_sim.backend.temporary.get(credential["access"])
    assert key is not None and credential["access"] in repr(key)
    assert credential["secret"] not in repr(key) and credential["securitytoken"] not in repr(key)


# --- the official SDKs, unchanged ----------------------------------------------------------------------


def test_the_official_ims_sdk_signs_with_the_temporary_credentials(
    fresh_sim: Simulator, credential: dict[str, str]
) -> None:
    config = HttpConfig.get_default_config()
    config.timeout = (5, 15)
    credentials = BasicCredentials(credential["access"], credential["secret"], fresh_sim.info.project_id)
    credentials = credentials.with_security_token(credential["securitytoken"])
    client = (
        ImsClient.new_builder().with_http_config(config).with_credentials(credentials)
        .with_endpoints([fresh_sim.endpoint]).build()
    )  # fmt: skip
    assert len(client.list_images(ListImagesRequest(limit=2)).images) == 2


def test_the_official_obs_sdk_signs_with_the_temporary_credentials(
    fresh_sim: Simulator, credential: dict[str, str]
) -> None:
    client = ObsClient(access_key_id=credential["access"], secret_access_key=credential["secret"],
                       security_token=credential["securitytoken"], server=fresh_sim.endpoint)  # fmt: skip
    try:
        assert client.headBucket(BUCKET).status == 200
        assert client.getObjectMetadata(BUCKET, "README.txt").status == 200
        refused = ObsClient(access_key_id=credential["access"], secret_access_key=credential["secret"],
                            server=fresh_sim.endpoint)  # fmt: skip
        assert refused.headBucket(BUCKET).status == 403
        refused.close()
    finally:
        client.close()
