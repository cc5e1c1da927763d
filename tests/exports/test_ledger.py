"""The export ledger: claim before the POST, one winner per export across processes, WAL, paths, the frame,
schema migrations, and the one decision of what a launch would do; on SQLite and on the suite's PostgreSQL."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import ims_nb
from ims_nb import ImsClient, SimulatorWarning
from ims_nb.errors import ConfigError
from ims_nb.exports.decisions import DECISION_COLUMNS
from ims_nb.exports.ledger import (
    ENV_LEDGER,
    ENV_SIM_LEDGER,
    Ledger,
    current_owner,
    default_path,
    ledger_for,
    owner_alive,
    simulator_path,
)
from ims_nb.exports.schema import COLUMNS, SCHEMA_VERSION
from ims_nb.sim import Simulator
from ims_nb.vocab import BLOCKING, DONE, LIVE, TRANSIENT_REFUSALS, Action, State, Target
from tests.exports.old_schema import SCHEMA_V0

TARGET = {
    "image_id": "img-1",
    "target": Target("ims-exports-cn-north-4", "exports/img-1.qcow2"),
    "image_name": "web-1",
    "file_format": "qcow2",
    "quick": False,
    "size_bytes": 10 * 1024**3,
    "region": "cn-north-4",
}


@pytest.fixture()
def ledger(where: str) -> Iterator[Ledger]:
    """A new ledger on each engine (this module's tests run on both), closed after the test."""
    with Ledger(where) as opened:
        yield opened


def claim(ledger: Ledger, **overrides: Any) -> int | None:
    return ledger.claim(**{**TARGET, **overrides})


def test_claim_writes_a_submitting_row_owned_by_this_process_before_anything_else(ledger: Ledger, where: str) -> None:
    row_id = claim(ledger)

    assert row_id is not None
    row = ledger.row(row_id)
    assert row["state"] == State.SUBMITTING
    assert row["owner"] == current_owner()
    assert owner_alive(row["owner"])
    assert row["job_id"] is None and row["status"] is None
    assert (row["image_id"], row["bucket"], row["object_key"], row["file_format"], row["quick"]) == (
        "img-1", "ims-exports-cn-north-4", "exports/img-1.qcow2", "qcow2", 0)  # fmt: skip
    assert row["bucket_url"] == "ims-exports-cn-north-4:exports/img-1.qcow2"  # derived, for readers
    assert row["created_at"] <= row["updated_at"] <= time.time()
    # the row is committed, readable by any other connection, before the caller sends anything
    with Ledger(where) as other:
        assert other.row(row_id)["state"] == "submitting"


@pytest.mark.parametrize("state", sorted(BLOCKING))
def test_a_live_done_or_refused_export_blocks_a_second_claim_unless_forced(ledger: Ledger, state: State) -> None:
    first = claim(ledger)
    assert first is not None
    ledger.update(first, state=state, error_code="IMG.0071" if state == State.REFUSED else None)

    assert claim(ledger) is None
    forced = claim(ledger, force=True)
    if state in LIVE:  # its holder (this process) is alive: never two live exports, forced or not
        assert forced is None
        return
    assert forced is not None and forced != first
    assert ledger.row(forced)["state"] == State.SUBMITTING


@pytest.mark.parametrize("state", [State.FAILED, State.MISSING])
def test_a_failed_or_missing_export_may_be_launched_again(ledger: Ledger, state: State) -> None:
    first = claim(ledger)
    assert first is not None
    ledger.update(first, state=state)

    assert claim(ledger) is not None


@pytest.mark.parametrize("code", TRANSIENT_REFUSALS)
def test_transient_refusals_do_not_block(ledger: Ledger, code: str) -> None:
    first = claim(ledger)
    assert first is not None
    ledger.update(first, state=State.REFUSED, error_code=code, fail_reason="try again")

    second = claim(ledger)
    assert second is not None and second != first
    # while the new claim is live, it blocks in turn
    assert claim(ledger) is None


def test_claims_are_per_target_and_one_export_per_image_at_a_time(ledger: Ledger) -> None:
    first = claim(ledger)
    assert first is not None
    other = Target("ims-exports-cn-north-4", "exports/other.qcow2")
    assert claim(ledger, target=other) is None  # the image is being exported elsewhere: the service says IMG.0148
    assert claim(ledger, image_id="img-2") is not None
    ledger.update(first, state=State.VERIFIED)
    assert claim(ledger, target=other) is not None
    assert len(ledger.rows()) == 3


def test_state_sets() -> None:
    assert {State.SUBMITTING, State.SUBMITTED, State.UNKNOWN, State.RUNNING} == LIVE
    assert {State.SUCCEEDED, State.VERIFIED} == DONE
    assert LIVE | DONE | {State.REFUSED} == BLOCKING
    assert State.FAILED not in BLOCKING and State.MISSING not in BLOCKING


CLAIMER = textwrap.dedent(
    """
    import os, sys, time
    from ims_nb.exports.ledger import Ledger
    from ims_nb.vocab import Target

    path, start = sys.argv[1], float(sys.argv[2])
    ledger = Ledger(path)
    while time.time() < start:
        time.sleep(0.001)
    row_id = ledger.claim(image_id="img-1", target=Target("ims-exports-cn-north-4", "exports/img-1.qcow2"),
                          image_name="web-1", file_format="qcow2", quick=False, size_bytes=1, region=None)
    print(row_id)
    """
)


def test_two_processes_claiming_one_export_at_once_exactly_one_wins(where: str) -> None:
    path = where
    Ledger(path).close()  # the schema exists before the race
    start = time.time() + 2.0  # every claimer has imported and opened the file by then
    claimers = [
        subprocess.Popen([sys.executable, "-c", CLAIMER, str(path), str(start)], stdout=subprocess.PIPE, text=True)
        for _ in range(6)
    ]
    answers = [c.communicate(timeout=60)[0].strip() for c in claimers]

    assert all(c.returncode == 0 for c in claimers)
    winners = [a for a in answers if a != "None"]
    assert len(winners) == 1, answers
    with Ledger(path) as ledger:
        rows = ledger.rows()
    assert [r["row_id"] for r in rows] == [int(winners[0])]
    assert rows[0]["state"] == State.SUBMITTING
    assert not owner_alive(rows[0]["owner"])  # its writer has exited: a reconciler would settle it


def test_wal_mode_is_on(tmp_path: Path) -> None:
    Ledger(tmp_path / "ledger.sqlite").close()
    with sqlite3.connect(tmp_path / "ledger.sqlite") as other:
        assert other.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_the_ledger_path_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = tmp_path / "somewhere" / "mine.sqlite"
    monkeypatch.setenv(ENV_LEDGER, str(path))

    with Ledger() as ledger:
        assert ledger.path == path
    assert path.exists()
    assert default_path() == path


def test_the_default_path_is_under_xdg_data_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(ENV_LEDGER, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))

    with Ledger() as ledger:
        assert ledger.path == tmp_path / "data" / "ims-nb" / "ledger.sqlite"
        assert ledger.path.exists()


def test_without_xdg_data_home_the_default_is_under_local_share(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_LEDGER, raising=False)
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)

    assert default_path() == Path.home() / ".local" / "share" / "ims-nb" / "ledger.sqlite"


def test_update_changes_fields_and_refuses_unknown_ones(ledger: Ledger) -> None:
    row_id = claim(ledger)
    assert row_id is not None
    before = ledger.row(row_id)["updated_at"]

    ledger.update(row_id, state=State.SUBMITTED, job_id="ff80808200000000000000000000001", status="INIT")
    row = ledger.row(row_id)
    assert (row["state"], row["job_id"], row["status"]) == ("submitted", "ff80808200000000000000000000001", "INIT")
    assert row["updated_at"] >= before

    with pytest.raises(ConfigError, match="bogus"):
        ledger.update(row_id, bogus=1)
    with pytest.raises(ConfigError, match="created_at"):
        ledger.update(row_id, created_at=0.0)
    with pytest.raises(ConfigError, match="image_id"):
        ledger.update(row_id, image_id="img-2")
    assert ledger.row(row_id)["state"] == "submitted"


def test_a_missing_row_is_a_config_error(ledger: Ledger) -> None:
    with pytest.raises(ConfigError, match="no ledger row 42"):
        ledger.row(42)


def test_rows_filters_by_state_oldest_first(ledger: Ledger) -> None:
    ids = [claim(ledger, image_id=f"img-{n}") for n in range(3)]
    assert None not in ids
    ledger.update(ids[1], state=State.FAILED)  # type: ignore[arg-type]

    assert [r["row_id"] for r in ledger.rows()] == ids
    assert [r["row_id"] for r in ledger.rows({State.SUBMITTING})] == [ids[0], ids[2]]
    assert [r["row_id"] for r in ledger.rows(LIVE)] == [ids[0], ids[2]]
    assert [r["row_id"] for r in ledger.rows({State.FAILED})] == [ids[1]]


def test_a_path_that_cannot_be_opened_is_a_config_error(tmp_path: Path) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("not a folder")
    with pytest.raises(ConfigError, match="cannot open the ledger"):
        Ledger(a_file / "ledger.sqlite")  # its folder would have to be inside a file
    a_folder = tmp_path / "folder"
    a_folder.mkdir()
    with pytest.raises(ConfigError, match="cannot open the ledger"):
        Ledger(a_folder)
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"this is not a database" * 100)
    with pytest.raises(ConfigError, match="cannot open the ledger"):
        Ledger(garbage)


def test_the_frame_has_the_ledger_columns_even_when_empty(ledger: Ledger) -> None:
    empty = ledger.frame()
    assert list(empty.columns) == list(COLUMNS)
    assert empty.empty

    claim(ledger)
    frame = ledger.frame()
    assert list(frame.columns) == list(COLUMNS)
    assert len(frame) == 1
    assert frame.loc[0, "state"] == "submitting"
    assert isinstance(frame, pd.DataFrame)


def test_owner_alive() -> None:
    host = current_owner().rpartition(":")[0]
    assert owner_alive(current_owner())
    assert owner_alive(f"{host}:1")  # init always runs (and is not ours to signal)
    assert not owner_alive(None)
    assert not owner_alive("")
    assert not owner_alive("no-colon")
    assert not owner_alive(f"{host}:not-a-pid")
    assert not owner_alive(f"another-host-{os.getpid()}:{os.getpid()}")
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    assert not owner_alive(f"{host}:{finished.stdout.strip()}")


def test_repr_and_reopening_keeps_rows(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    with Ledger(path) as first:
        row_id = claim(first)
        assert repr(first) == f"Ledger({str(path)!r})"
    with Ledger(path) as again:
        assert again.row(row_id)["state"] == "submitting"  # type: ignore[arg-type]


# --- which ledger a client's exports go to ----------------------------------------------------------


@pytest.fixture()
def ledger_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Both ledger variables unset and the temporary folder in tmp_path; returns that folder."""
    monkeypatch.delenv(ENV_LEDGER, raising=False)
    monkeypatch.delenv(ENV_SIM_LEDGER, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    return tmp_path / "tmp"


@pytest.fixture()
def simulator_client(
    ledger_env: Path, clean_env: Path, fresh_sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ImsClient]:
    """A client flagged as simulator: the session simulator found through ``$IMS_NB_SIM``."""
    monkeypatch.setenv("IMS_NB_SIM", json.dumps(fresh_sim.info.as_json_dict()))
    with pytest.warns(SimulatorWarning), ims_nb.connect() as client:
        yield client


def test_a_real_accounts_exports_go_to_the_default_ledger(
    ledger_env: Path, sim_client: ImsClient, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(ENV_SIM_LEDGER, str(tmp_path / "sim.sqlite"))  # not for a real account
    with ledger_for(sim_client) as ledger:
        assert ledger.path == default_path() == tmp_path / "data" / "ims-nb" / "ledger.sqlite"
    monkeypatch.setenv(ENV_LEDGER, str(tmp_path / "mine.sqlite"))
    with ledger_for(sim_client) as ledger:
        assert ledger.path == tmp_path / "mine.sqlite"
    assert not (tmp_path / "sim.sqlite").exists()


def test_a_simulators_exports_go_to_the_lab_ledger_when_set(
    simulator_client: ImsClient, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(ENV_LEDGER, str(tmp_path / "real.sqlite"))  # never the real account's ledger
    monkeypatch.setenv(ENV_SIM_LEDGER, str(tmp_path / "lab" / "sim.sqlite"))
    with ledger_for(simulator_client) as ledger:
        assert ledger.path == tmp_path / "lab" / "sim.sqlite" and ledger.path.exists()
    assert not (tmp_path / "real.sqlite").exists()


def test_otherwise_a_simulators_exports_go_to_a_temporary_ledger_of_its_port(
    simulator_client: ImsClient, ledger_env: Path, fresh_sim: Simulator
) -> None:
    port = fresh_sim.endpoint.rsplit(":", 1)[1]  # a simulator running apart: the processes using it share the file
    with ledger_for(simulator_client) as ledger:
        assert ledger.path == ledger_env / f"ims-nb-sim-{port}.sqlite"
        assert ledger.path.exists()
    assert not default_path().exists()


@pytest.mark.parametrize(
    ("endpoint", "name"),
    [
        ("http://127.0.0.1:8123", "8123"),
        ("http://127.0.0.1:8123/", "8123"),
        ("http://[::1]:9000", "9000"),
    ],
)
def test_simulator_path_names_the_process_and_the_port(ledger_env: Path, endpoint: str, name: str) -> None:
    assert simulator_path(endpoint) == ledger_env / f"ims-nb-sim-{os.getpid()}-{name}.sqlite"


def test_simulator_path_prefers_the_lab_ledger(
    ledger_env: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(ENV_SIM_LEDGER, str(tmp_path / "lab.sqlite"))
    assert simulator_path("http://127.0.0.1:8123") == tmp_path / "lab.sqlite"


# --- schema versions: a file written by the first schema migrates in place ---------------------------

V0_ROWS = [
    {"image_id": "img-1", "image_name": "web-1", "bucket_url": "ims-b:exports/web-1.qcow2", "file_format": "qcow2",
     "quick": 0, "size_bytes": 10 * 1024**3, "region": "cn-north-4", "state": "verified", "job_id": "job-1",
     "status": "SUCCESS", "process_percent": 1.0, "begin_time": "2024-01-01T00:00:00Z",
     "end_time": "2024-01-01T01:00:00Z", "error_code": None, "fail_reason": None, "object_size": 123, "note": None,
     "owner": "host:1", "created_at": 1.0, "updated_at": 2.0, "progress_at": 1.5},
    {"image_id": "img-2", "image_name": None, "bucket_url": "ims-b:big.zvhd2", "file_format": None, "quick": 1,
     "size_bytes": None, "region": None, "state": "refused", "job_id": None, "status": None, "process_percent": None,
     "begin_time": None, "end_time": None, "error_code": "IMG.0070", "fail_reason": "object exists",
     "object_size": None, "note": "a note: with colons", "owner": None, "created_at": 3.0, "updated_at": 4.0,
     "progress_at": None},
    {"image_id": "img-3", "image_name": "db", "bucket_url": "ims-b:a/b:c.vhd", "file_format": "vhd", "quick": 0,
     "size_bytes": 1, "region": "cn-north-4", "state": "running", "job_id": "job-3", "status": "RUNNING",
     "process_percent": 0.4, "begin_time": None, "end_time": None, "error_code": None, "fail_reason": None,
     "object_size": None, "note": None, "owner": "host:2", "created_at": 5.0, "updated_at": 6.0, "progress_at": 5.5},
]  # fmt: skip


def _write_v0(path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.executescript(SCHEMA_V0)
        for row in V0_ROWS:
            db.execute(
                f"INSERT INTO exports ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})", tuple(row.values())
            )


def test_a_ledger_written_by_the_first_schema_is_migrated_in_place_without_losing_a_row(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    _write_v0(path)
    with Ledger(path) as ledger:
        rows = ledger.rows()
        assert [r["row_id"] for r in rows] == [1, 2, 3]
        for old, new in zip(V0_ROWS, rows, strict=True):
            bucket, _, key = old["bucket_url"].partition(":")  # the test's own reading of the old column
            assert (new["bucket"], new["object_key"], new["bucket_url"]) == (bucket, key, old["bucket_url"])
            assert {name: new[name] for name in old} == old
        assert list(ledger.frame().columns) == list(COLUMNS)
        # the migrated file works as a new one: claims are judged by bucket and object key
        assert ledger.claim(image_id="img-1", target=Target("ims-b", "exports/web-1.qcow2"), image_name=None,
                            file_format="qcow2", quick=False, size_bytes=None, region=None) is None  # fmt: skip
        assert claim(ledger) == 4
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        columns = {r[1] for r in db.execute("PRAGMA table_info(exports)")}
    assert "bucket_url" not in columns and {"bucket", "object_key"} <= columns
    with Ledger(path) as again:  # opening a migrated file changes nothing
        assert [r["row_id"] for r in again.rows()] == [1, 2, 3, 4]


def test_a_new_ledger_has_the_last_schema_version_and_a_newer_one_is_refused(tmp_path: Path) -> None:
    Ledger(tmp_path / "new.sqlite").close()
    with sqlite3.connect(tmp_path / "new.sqlite") as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(ConfigError, match="upgrade ims-nb"):
        Ledger(tmp_path / "new.sqlite")


# --- decide: what a launch of a plan would do with each row, and why ------------------------------


def test_decide_says_launch_skip_or_refused_and_why(ledger: Ledger) -> None:
    live = claim(ledger)
    refused = claim(ledger, image_id="img-2")
    assert live is not None and refused is not None
    ledger.update(refused, state=State.REFUSED, error_code="IMG.0071", fail_reason="no")
    target = TARGET["target"]
    elsewhere = Target(target.bucket, "exports/elsewhere.qcow2")
    plan = pd.DataFrame({
        "image_id": ["img-1", "img-2", "img-3", "img-4", "img-1"],
        "bucket": [target.bucket] * 5,
        "object_key": [target.key, target.key, "a.qcow2", "b.qcow2", elsewhere.key],
        "exportable": [True, True, True, False, True],
        "blocking": [[], [], [], ["iso-image"], []],
    })  # fmt: skip
    decided = ledger.decide(plan)
    assert list(decided.columns) == list(DECISION_COLUMNS) and list(decided.index) == list(plan.index)
    assert decided["action"].tolist() == [Action.SKIP, Action.REFUSED, Action.LAUNCH, Action.REFUSED, Action.REFUSED]
    assert decided["reason"][0].startswith(f"already being exported: ledger row {live} is submitting")
    assert "IMG.0071: no; --force sends it again" in decided["reason"][1]
    assert decided["reason"][3] == "preflight: iso-image"
    assert decided["reason"][4].startswith(f"already being exported to {target}")
    assert decided["row_id"].tolist()[:2] == [live, refused] and decided["row_id"][2] is pd.NA
    forced = ledger.decide(plan, force=True)
    assert forced["action"].tolist()[:3] == [Action.LAUNCH] * 3
    assert forced["reason"][0] == f"again: ledger row {live} is submitting"


def test_claim_follows_decide(ledger: Ledger) -> None:
    """A claim inserts exactly when ``decide`` says launch (they share one verdict)."""
    plan = pd.DataFrame({"image_id": ["img-1"], "bucket_url": [str(TARGET["target"])], "exportable": [True],
                         "blocking": [[]]})  # fmt: skip
    for _ in range(3):
        expected = ledger.decide(plan)["action"][0] == Action.LAUNCH
        assert (claim(ledger) is not None) == expected
