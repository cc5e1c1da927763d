"""Who is behind a key: the simulator's IAM credential and user lookups, a team of operators, the official IAM SDK."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from huaweicloudsdkcore.auth.credentials import GlobalCredentials
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkiam import v3 as iam  # the test extra installs it: never skipped

from ims_nb.client.auth import AkSkAuth
from ims_nb.sim import Simulator
from ims_nb.sim.inventory import user_id
from tests.sim.test_sdk_ims import PROJECT_ROOT, _read_line

TEAM = 3


@pytest.fixture(scope="module")
def team_sim() -> Iterator[Simulator]:
    """A simulator whose account has three operators besides the demo users."""
    with Simulator(seed=0, images=20, manual_clock=True, team=TEAM) as simulator:
        yield simulator


def users(sim: Simulator) -> dict[str, dict[str, Any]]:
    credentials = httpx.get(f"{sim.endpoint}/_sim/credentials").raise_for_status().json()
    return {user["name"]: user | {"domain_id": credentials["domain_id"]} for user in credentials["users"]}


def sdk(sim: Simulator, user: dict[str, Any]) -> iam.IamClient:
    credentials = GlobalCredentials(user["ak"], user["sk"], user["domain_id"])
    return iam.IamClient.new_builder().with_credentials(credentials).with_endpoint(sim.endpoint).build()


def test_a_team_has_its_operators_with_their_own_keys_in_one_project(team_sim: Simulator) -> None:
    found = users(team_sim)
    operators = [f"ims-operator-{n}" for n in range(2, TEAM + 2)]
    assert set(found) == {"ims-operator", "ims-auditor", *operators}
    assert len({user["ak"] for user in found.values()}) == len(found)
    assert all(found[name]["user_id"] == user_id(0, name) for name in found)  # stable: from the seed
    for name in operators:
        auth = AkSkAuth(found[name]["ak"], found[name]["sk"], project_id=team_sim.info.project_id)
        listed = httpx.get(f"{team_sim.endpoint}/v2/cloudimages", auth=auth, params={"limit": 1})
        assert listed.status_code == 200


def test_the_official_sdk_finds_the_user_behind_an_access_key(team_sim: Simulator) -> None:
    user = users(team_sim)["ims-operator-3"]
    client = sdk(team_sim, user)
    credential = client.show_permanent_access_key(iam.ShowPermanentAccessKeyRequest(access_key=user["ak"])).credential
    assert (credential.user_id, credential.access, credential.status) == (user["user_id"], user["ak"], "active")
    shown = client.keystone_show_user(iam.KeystoneShowUserRequest(user_id=credential.user_id)).user
    assert (shown.name, shown.id, shown.domain_id) == ("ims-operator-3", user["user_id"], user["domain_id"])


def test_an_iam_user_may_look_up_only_their_own_key_and_user(team_sim: Simulator) -> None:
    found = users(team_sim)
    me, other = found["ims-operator-2"], found["ims-operator"]
    client = sdk(team_sim, me)
    lookups = (lambda: client.show_permanent_access_key(iam.ShowPermanentAccessKeyRequest(access_key=other["ak"])),
               lambda: client.keystone_show_user(iam.KeystoneShowUserRequest(user_id=other["user_id"])))  # fmt: skip
    for lookup in lookups:
        with pytest.raises(ClientRequestException) as refused:
            lookup()
        assert refused.value.status_code == 403


@pytest.mark.parametrize("path", ["/v3.0/OS-CREDENTIAL/credentials/NOSUCHKEY0000000000", "/v3/users/" + "0" * 32])
def test_an_unknown_key_or_user_is_404(team_sim: Simulator, path: str) -> None:
    auth = AkSkAuth(team_sim.info.ak, team_sim.info.sk)
    answer = httpx.get(f"{team_sim.endpoint}{path}", auth=auth)
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == 404


def test_a_password_token_names_the_same_user_id(team_sim: Simulator) -> None:
    credentials = httpx.get(f"{team_sim.endpoint}/_sim/credentials").json()
    user = users(team_sim)["ims-operator-4"]
    login = {"name": user["name"], "password": user["password"], "domain": {"name": credentials["domain_name"]}}
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": login}}}}
    token = httpx.post(f"{team_sim.endpoint}/v3/auth/tokens", json=body).raise_for_status()
    assert token.json()["token"]["user"] == token.json()["token"]["user"] | {
        "id": user["user_id"],
        "name": user["name"],
    }
    shown = httpx.get(f"{team_sim.endpoint}/v3/users/{user['user_id']}",
                      headers={"X-Auth-Token": token.headers["x-subject-token"]})  # fmt: skip
    assert shown.json()["user"]["name"] == "ims-operator-4"


def test_a_reset_keeps_the_team() -> None:
    with Simulator(seed=1, images=5, manual_clock=True, team=1) as simulator:
        httpx.post(f"{simulator.endpoint}/_sim/reset", json={"seed": 2}).raise_for_status()
        assert users(simulator)["ims-operator-2"]["user_id"] == user_id(2, "ims-operator-2")


def test_cli_team_option() -> None:
    command = [sys.executable, "-m", "ims_nb", "sim", "--port", "0", "--images", "5", "--manual-clock", "--team", "2"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=PROJECT_ROOT)
    try:
        line = json.loads(_read_line(process, 30))
        names = [u["name"] for u in httpx.get(f"{line['endpoint']}/_sim/credentials").json()["users"]]
        assert names == ["ims-operator", "ims-auditor", "ims-operator-2", "ims-operator-3"]
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=10)
