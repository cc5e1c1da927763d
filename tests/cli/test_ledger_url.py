"""``--ledger URL`` on the verbs that take a ledger, ``$IMS_NB_LEDGER`` as a URL, and a PostgreSQL password that
comes from ``$PGPASSWORD`` or ``~/.pgpass`` (libpq reads both), never from the command line."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import ims_nb
from ims_nb.cli import app
from ims_nb.cli._main import main
from ims_nb.errors import ConfigError
from ims_nb.exports.engines import PGPASSWORD
from ims_nb.exports.ledger import ENV_LEDGER, Ledger
from ims_nb.exports.schema import SCHEMA_VERSION
from tests.cli.helpers import run_main
from tests.cli.test_app import FakeChild
from tests.helpers import BUCKET, cli_simulator, is_exportable
from tests.pg import ROLE_PASSWORD


@pytest.fixture(scope="module")
def sim_line() -> Iterator[str]:
    """``ims-nb sim`` with a fast clock: an export ends within a fraction of a second."""
    with cli_simulator("--images", "40", "--time-scale", "100000") as line:
        yield line


def exportable(info: dict[str, str], count: int) -> list[str]:
    with ims_nb.connect(ak=info["ak"], sk=info["sk"], project_id=info["project_id"], endpoint=info["endpoint"]) as c:
        return [r["id"] for r in c.iter_images() if is_exportable(r, info["project_id"])][:count]


def listed(capsys: pytest.CaptureFixture[str], argv: list[str]) -> list[dict[str, Any]]:
    capsys.readouterr()
    assert run_main(argv) == 0, capsys.readouterr().err
    rows: list[dict[str, Any]] = json.loads(capsys.readouterr().out)
    return rows


def test_export_jobs_and_a_dry_run_take_a_postgresql_url_and_the_environment_names_it_too(
    sim_line: str, sim_info: dict[str, str], pg_database: str, bare_env: dict[str, str],
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    ids = exportable(sim_info, 2)
    send = ["export", *ids, "--sim", sim_line, "--bucket", BUCKET, "--format", "qcow2", "--ledger", pg_database]
    report = listed(capsys, [*send, "--watch", "--output-format", "json"])
    assert sorted(r["image_id"] for r in report) == sorted(ids) and {r["action"] for r in report} == {"launched"}
    jobs = listed(capsys, ["jobs", "--ledger", pg_database, "--output-format", "json"])
    assert sorted(r["image_id"] for r in jobs) == sorted(ids) and {r["state"] for r in jobs} == {"verified"}
    again = listed(capsys, [*send, "--dry-run", "--output-format", "json"])
    assert {r["action"] for r in again} == {"skip"}  # the server's ledger knows them
    monkeypatch.setenv(ENV_LEDGER, pg_database)  # no --ledger: $IMS_NB_LEDGER, a URL
    assert listed(capsys, ["jobs", "--output-format", "json"]) == jobs


def test_a_sqlite_url_is_a_file_and_a_missing_one_is_an_empty_ledger(
    tmp_path: Path, bare_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    missing = f"sqlite:///{tmp_path / 'none' / 'ledger.sqlite'}"
    assert listed(capsys, ["jobs", "--ledger", missing, "--output-format", "json"]) == []
    with Ledger(f"sqlite:///{tmp_path / 'l.sqlite'}") as ledger:
        assert ledger.path == tmp_path / "l.sqlite"
    assert listed(capsys, ["jobs", "--ledger", f"sqlite:///{tmp_path / 'l.sqlite'}", "--output-format", "json"]) == []


@pytest.mark.parametrize(
    ("ledger", "says"),
    [("postgresql://me:PLANTED-CLI-PASSWORD@db.example/ims", "a password is never a command-line option"),
     ("mysql://me@db.example/ims", "SQLite or PostgreSQL, not mysql"),
     ("postgresql://me:PLANTED-CLI-PASSWORD@db.example:port/ims", "cannot read the ledger URL")],
)  # fmt: skip
def test_a_bad_ledger_url_or_one_with_a_password_is_refused_before_anything_is_sent(
    ledger: str, says: str, bare_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    for verb in (["jobs"], ["export", "--bucket", BUCKET, "--sim", "{}"], ["coverage", "--sim", "{}"]):
        assert run_main([*verb, "--ledger", ledger]) == 2
        out, err = capsys.readouterr()
        assert says in err and "PLANTED-CLI-PASSWORD" not in out + err, err


def test_a_url_without_a_password_takes_it_from_pgpassword_or_pgpass(
    pg_password_role: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(PGPASSWORD, raising=False)
    monkeypatch.delenv("PGPASSFILE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # libpq finds ~/.pgpass through $HOME
    with pytest.raises(ConfigError, match="cannot open the ledger") as refused:
        Ledger(pg_password_role)
    assert ROLE_PASSWORD not in str(refused.value)
    monkeypatch.setenv(PGPASSWORD, ROLE_PASSWORD)
    with Ledger(pg_password_role) as ledger:
        assert ledger.schema_version() == SCHEMA_VERSION and ledger.url == pg_password_role.replace(
            "postgresql://", "postgresql+psycopg://"
        )
    monkeypatch.delenv(PGPASSWORD)
    pgpass = tmp_path / ".pgpass"
    pgpass.write_text(f"127.0.0.1:*:*:ims_nb_with_password:{ROLE_PASSWORD}\n")
    pgpass.chmod(0o600)  # libpq ignores a password file others can read
    with Ledger(pg_password_role) as ledger:
        assert ledger.schema_version() == SCHEMA_VERSION


def test_app_hands_its_ledger_to_the_dashboard_through_the_environment(
    monkeypatch: pytest.MonkeyPatch, bare_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HUAWEICLOUD_SDK_AK", "AK-OF-MINE")
    monkeypatch.setenv("HUAWEICLOUD_SDK_SK", "sk-of-mine")
    monkeypatch.setenv(ENV_LEDGER, "postgresql://team:PLANTED-ENV-PASSWORD@db.example/ims")
    monkeypatch.setattr(subprocess, "Popen", FakeChild)
    monkeypatch.setattr(app, "wait_listening", lambda port, child: True)
    monkeypatch.setattr(app, "first_free_port", lambda port: port)
    FakeChild.started = []
    assert main(["app", "--app-port", "9201"]) == 0  # $IMS_NB_LEDGER: inherited, shown without its password
    assert FakeChild.started[-1].options["env"][ENV_LEDGER] == "postgresql://team:PLANTED-ENV-PASSWORD@db.example/ims"  # type: ignore[index]
    assert main(["app", "--app-port", "9201", "--ledger", "postgresql://team@db.example/other"]) == 0
    assert FakeChild.started[-1].options["env"][ENV_LEDGER] == "postgresql://team@db.example/other"  # type: ignore[index]
    out = capsys.readouterr().out
    assert "recorded in postgresql+psycopg://team:***@db.example/ims\n" in out, out
    assert "recorded in postgresql+psycopg://team@db.example/other\n" in out and "PLANTED" not in out
