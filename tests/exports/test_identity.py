"""Whose rows are whose (issue 12, point 8): exports launched on one endpoint are never polled, reconciled or changed
by a watch connected elsewhere (on SQLite and PostgreSQL); old ledger files migrate, and their rows are claimed only
with a note."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

import ims_nb
from ims_nb.client import ImsClient
from ims_nb.errors import ApiError, ConfigError
from ims_nb.exports.flows import drive
from ims_nb.exports.history import jobs_frame
from ims_nb.exports.identity import (
    ELSEWHERE,
    UNKNOWN_ACCOUNT,
    Identity,
    belongs_to,
    identity_flow,
    identity_of,
    scoped,
)
from ims_nb.exports.launch import launch, reconcile
from ims_nb.exports.leases import ENV_HOST, this_host
from ims_nb.exports.ledger import Ledger
from ims_nb.exports.watch import watch, watch_async
from ims_nb.sim import Simulator
from ims_nb.vocab import LIVE, State, Target
from tests.exports.old_schema import SCHEMA_V0
from tests.helpers import exportable_plan

REAL = Identity("https://ims.cn-north-4.myhuaweicloud.com", "cn-north-4", "0a1b2c", "AK REALKEY")


@pytest.fixture()
def ledger(where: str) -> Iterator[Ledger]:
    """A new ledger on each engine (``where``): whose rows are whose is the ledger's answer on both; the old files
    below are SQLite's alone."""
    with Ledger(where) as opened:
        yield opened


@pytest.fixture()
def launched(sim_client: ImsClient, ledger: Ledger) -> list[dict[str, Any]]:
    """Three exports running on the session simulator (manual clock: they stay live), in ``ledger``."""
    exportable = exportable_plan(sim_client, key_template="who/{id8}.{ext}").head(3)
    frame = launch(exportable, client=sim_client, ledger=ledger, max_rate=1000)
    rows = ledger.rows(every_account=True)
    assert len(frame) == 3 and {r["state"] for r in rows} <= {s.value for s in LIVE}
    return rows


def test_identity_names_endpoint_project_and_access_key_never_a_secret(sim_client: ImsClient) -> None:
    who = identity_of(sim_client)
    info = sim_client.settings
    assert who is not None and who.endpoint == sim_client.endpoints.ims and who.project_id == sim_client.project_id
    assert who.principal == f"AK {info.credentials.ak}"  # type: ignore[union-attr]
    secret = info.credentials.sk  # type: ignore[union-attr]
    assert secret not in str(who) and secret not in repr(who)
    assert identity_of(object()) is None  # a double that cannot say where it points: the ledger stays unbound


def test_each_row_records_the_account_that_launched_it(
    launched: list[dict[str, Any]], sim_client: ImsClient, ledger: Ledger
) -> None:
    who = identity_of(sim_client)
    assert who is not None
    assert {(r["endpoint"], r["project_id"], r["launched_by"]) for r in launched} == {
        (who.endpoint, who.project_id, who.principal)
    }
    assert all(r["adopted_at"] is None for r in launched)
    assert set(jobs_frame(ledger)["belongs_to"]) == {str(belongs_to(launched[0]))}


def test_a_watch_connected_elsewhere_leaves_every_row_unchanged_and_says_whose_they_are(
    launched: list[dict[str, Any]], other_client: ImsClient, ledger: Ledger
) -> None:
    frame = watch(ledger, client=other_client, timeout=30)
    assert ledger.rows(every_account=True) == launched  # nothing polled, reconciled or changed
    assert len(frame) == 3 and all(w.startswith(f"{ELSEWHERE}: {launched[0]['endpoint']}") for w in frame["belongs_to"])
    assert reconcile(ledger, other_client).empty
    assert ledger.rows(every_account=True) == launched


def test_an_async_watch_connected_elsewhere_leaves_every_row_unchanged(
    launched: list[dict[str, Any]], other_sim: Simulator, ledger: Ledger, clean_env: Path
) -> None:
    info = other_sim.info

    async def main() -> pd.DataFrame:
        async with ims_nb.connect_async(ak=info.ak, sk=info.sk, project_id=info.project_id,
                                        endpoint=info.endpoint) as aclient:  # fmt: skip
            return await watch_async(ledger, client=aclient, timeout=30)

    frame = asyncio.run(main())
    assert ledger.rows(every_account=True) == launched
    assert frame["belongs_to"].str.startswith(ELSEWHERE).all()


def test_a_launch_elsewhere_is_not_blocked_by_another_accounts_rows_and_cannot_change_them(
    launched: list[dict[str, Any]], other_client: ImsClient, ledger: Ledger
) -> None:
    here = ledger.bound_to(identity_of(other_client))
    first = launched[0]
    claimed = here.claim(image_id=first["image_id"], target=Target.parse(first["bucket_url"]), image_name=None,
                         file_format="qcow2", quick=False, size_bytes=None, region=first["region"])  # fmt: skip
    assert claimed is not None  # the same image id on another endpoint is another image
    with pytest.raises(ConfigError, match="belongs to another account"):
        here.update(first["row_id"], state=State.FAILED)
    assert ledger.row(first["row_id"]) == first


# --- old ledger files ---------------------------------------------------------------------------------------


def _old_file(path: Path, state: str = "running") -> None:
    """A ledger written before identities: no identity columns, one live row with a job id."""
    with sqlite3.connect(path) as db:
        db.executescript(SCHEMA_V0)  # the schema before bucket and object key were apart, and identities
        db.execute("INSERT INTO exports (image_id, bucket_url, quick, region, state, job_id, created_at, updated_at) "
                   "VALUES ('img-1', 'b:k.qcow2', 0, 'cn-north-4', ?, 'job-1', 1.0, 1.0)", (state,))  # fmt: skip
        assert "endpoint" not in {column[1] for column in db.execute("PRAGMA table_info(exports)")}


class _Elsewhere:
    """A client of a real-looking endpoint whose service does not know the old row's job (IMG.0086)."""

    def __init__(self) -> None:
        self.endpoints = type("E", (), {"ims": REAL.endpoint})()
        self.region, self.project_id, self.polls = REAL.region, REAL.project_id, 0

    def job_progress(self, job_id: str) -> dict[str, Any]:
        self.polls += 1
        raise ApiError(404, "IMG.0086", "The job does not exist.")


def test_an_old_file_migrates_and_its_rows_wait_for_an_account_of_their_region(tmp_path: Path) -> None:
    _old_file(tmp_path / "old.sqlite")
    with Ledger(tmp_path / "old.sqlite") as ledger:
        (row,) = ledger.rows()
        assert row["image_id"] == "img-1" and row["endpoint"] is None and row["state"] == "running"
        assert jobs_frame(ledger)["belongs_to"].tolist() == [UNKNOWN_ACCOUNT]
        simulator = Identity("http://127.0.0.1:1", "cn-north-4", "0a1b2c", "AK SIM", simulator=True)
        assert ledger.bound_to(simulator).rows() == [] and ledger.rows() == [row]  # a simulator claims nothing
        assert ledger.bound_to(Identity(REAL.endpoint.replace("north-4", "east-3"), "cn-east-3")).rows() == []
        (claimed,) = ledger.bound_to(REAL).rows()
        assert claimed["endpoint"] == REAL.endpoint and claimed["adopted_at"] is not None
        assert claimed["note"].startswith(f"claimed by {REAL}") and claimed["state"] == "running"
    Ledger(tmp_path / "old.sqlite").close()  # the migration is idempotent


@pytest.mark.parametrize("state", ["submitting", "unknown"])
def test_an_old_row_in_doubt_is_never_claimed_so_never_sent_again(tmp_path: Path, state: str) -> None:
    """An old row may have been a simulator's: reconciling it on a real account could start a second export."""
    _old_file(tmp_path / "old.sqlite", state)
    with Ledger(tmp_path / "old.sqlite") as ledger:
        assert ledger.bound_to(REAL).rows() == []
        (row,) = ledger.rows()
        assert row["endpoint"] is None and row["state"] == state and row["adopted_at"] is None
        assert reconcile(ledger, _Elsewhere()).empty  # nothing of it is looked at or sent


def test_a_claimed_row_is_never_failed_on_the_word_of_an_endpoint_that_does_not_know_its_job(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _old_file(tmp_path / "old.sqlite")
    client = _Elsewhere()
    clock: list[float] = [0.0]
    sleep: Callable[[float], None] = lambda seconds: clock.__setitem__(0, clock[0] + seconds)  # noqa: E731
    with Ledger(tmp_path / "old.sqlite") as ledger:
        watch(ledger, client=client, timeout=600, clock=lambda: clock[0], sleep=sleep)
        (row,) = ledger.rows()
    assert client.polls == 1
    assert row["state"] == "running" and row["error_code"] is None and row["endpoint"] is None
    assert "IMG.0086" in row["note"] and "left for the endpoint that accepted it" in row["note"]


# --- who launched it: the IAM user behind the key, and the host (issue 15, item 4) -------------------------------

IAM_LOOKUPS = "^/v3.0/OS-CREDENTIAL/credentials/|^/v3/users/"


def test_a_launch_records_the_iam_user_behind_its_key_and_its_host_looked_up_once(
    client: ImsClient, rows: pd.DataFrame, ledger: Ledger, sent: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_HOST, "jupyter-7")
    watched = scoped(ledger, client)  # a watch binds the ledger without asking IAM anything
    assert watched.identity is not None and watched.identity.user is None and not sent.matching("GET", IAM_LOOKUPS)
    launch(rows.head(2), client=client, ledger=ledger, max_rate=1000)
    launch(rows.iloc[2:4], client=client, ledger=ledger, max_rate=1000)
    recorded = {(r["launched_user"], r["launched_host"], r["launched_by"]) for r in ledger.rows(every_account=True)}
    assert recorded == {("ims-operator", "jupyter-7", f"AK {client.settings.credentials.ak}")}  # type: ignore[union-attr]
    assert [r.url.path.split("/")[2] for r in sent.matching("GET", IAM_LOOKUPS)] == ["OS-CREDENTIAL", "users"]


def test_iam_refusing_the_users_name_leaves_its_id(
    client: ImsClient, rows: pd.DataFrame, ledger: Ledger, control: httpx.Client, sim_users: dict[str, Any]
) -> None:
    control.post("/faults", json={"kind": "response", "path": "^/v3/users/", "status": 403, "count": None,
                                  "body": '{"error": {"code": 403, "message": "not an administrator"}}'})  # fmt: skip
    try:
        launch(rows.head(1), client=client, ledger=ledger, max_rate=1000)
    finally:
        control.delete("/faults")
    operator = next(u for u in sim_users["users"] if u["name"] == "ims-operator")
    assert [r["launched_user"] for r in ledger.rows()] == [operator["user_id"]]


@pytest.mark.parametrize("status", [403, 404])
def test_a_failed_lookup_never_blocks_a_launch_the_user_stays_unknown(
    client: ImsClient, rows: pd.DataFrame, ledger: Ledger, control: httpx.Client, status: int
) -> None:
    control.post("/faults", json={"kind": "response", "path": "^/v3.0/OS-CREDENTIAL/credentials/",
                                  "status": status, "count": None})  # fmt: skip
    try:
        launched = launch(rows.head(2), client=client, ledger=ledger, max_rate=1000)
    finally:
        control.delete("/faults")
    assert len(launched) == 2 and all(r["job_id"] for r in ledger.rows())
    assert {(r["launched_user"], r["launched_by"]) for r in ledger.rows()} == {
        (None, f"AK {client.settings.credentials.ak}")  # type: ignore[union-attr]
    }


def test_a_password_login_names_its_user_without_asking_iam(
    connect_sim: Callable[..., ImsClient], sim_users: dict[str, Any], sent: Any
) -> None:
    operator = next(u for u in sim_users["users"] if u["name"] == "ims-operator")
    client = connect_sim(ak=None, sk=None, project_id=None, username=operator["name"], password=operator["password"],
                         domain=sim_users["domain_name"])  # fmt: skip
    who = drive(identity_flow(client, who=True), client)
    assert who is not None and who.user == "ims-operator" and who.principal == "user ims-operator"
    assert who.host == this_host() and not sent.matching("GET", IAM_LOOKUPS)
    assert operator["password"] not in repr(who) and operator["password"] not in str(who)
