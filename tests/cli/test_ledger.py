"""``ims-nb ledger upgrade|info|copy``: from which version to which, what a ledger holds, a copy between engines that
refuses a destination with rows or a password in its arguments, in one line each, never a password."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ims_nb.exports.engines import PGPASSWORD
from ims_nb.exports.ledger import ENV_LEDGER, Ledger
from ims_nb.exports.schema import SCHEMA_VERSION
from tests.cli.helpers import run_main
from tests.exports.test_migrations import RELEASE_LEDGER

pytestmark = pytest.mark.usefixtures("bare_env")

SECRET = "s3cret-pw"


@pytest.fixture()
def release(tmp_path: Path) -> Path:
    """A copy of the release's ledger (schema version 3, 39 rows)."""
    path = tmp_path / "release.sqlite"
    shutil.copy(RELEASE_LEDGER, path)
    return path


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = run_main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_upgrade_says_from_which_version_to_which(release: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(["ledger", "upgrade", "--ledger", str(release)], capsys) == (
        0, f"ledger {release}: upgraded from schema version 3 to {SCHEMA_VERSION}\n", "")  # fmt: skip
    assert _run(["ledger", "upgrade", "--ledger", f"sqlite:///{release}"], capsys) == (
        0, f"ledger {release}: at schema version {SCHEMA_VERSION}\n", "")  # fmt: skip


def test_upgrade_and_info_default_to_the_usual_ledger(
    release: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_LEDGER, str(release))
    code, out, _ = _run(["ledger", "info"], capsys)
    assert code == 0 and f"ledger: {release}\nengine: sqlite\nschema version: 3 (this ims-nb: {SCHEMA_VERSION})" in out
    assert "rows: 39\n  failed: 2\n  refused: 2\n  submitting: 1\n  verified: 34\nleases: 0\n" in out
    assert _run(["ledger", "upgrade"], capsys)[1].endswith(f"upgraded from schema version 3 to {SCHEMA_VERSION}\n")


def test_info_of_a_missing_file_is_one_line_and_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(["ledger", "info", "--ledger", str(tmp_path / "none.sqlite")], capsys)
    assert (code, out, err) == (2, "", f"ims-nb ledger: error: no ledger at {tmp_path / 'none.sqlite'}\n")
    assert not (tmp_path / "none.sqlite").exists()


def test_copy_to_postgresql_and_back_refusing_a_destination_with_rows(
    release: Path, pg_database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PGPASSWORD, SECRET)  # the suite's server trusts loopback: not checked
    code, out, err = _run(["ledger", "copy", str(release), pg_database], capsys)
    assert code == 0 and err == "" and SECRET not in out
    shown = pg_database.replace("postgresql://", "postgresql+psycopg://")
    assert out == f"copied 39 rows and 0 leases from {release} to {shown}\n"

    code, out, err = _run(["ledger", "copy", str(release), pg_database], capsys)
    assert code == 2 and out == "" and err.count("\n") == 1
    assert err.startswith("ims-nb ledger: error: the ledger postgresql+psycopg://") and "not empty (39 rows)" in err

    code, out, _ = _run(["ledger", "info", "--ledger", pg_database], capsys)
    assert code == 0 and "engine: postgresql\n" in out and "rows: 39\n" in out

    back = tmp_path / "back.sqlite"
    assert _run(["ledger", "copy", pg_database, str(back)], capsys)[0] == 0
    with Ledger(back) as copied, Ledger(release) as original:
        assert copied.rows() == original.rows()


@pytest.mark.parametrize("argument", ["SRC", "DST"])
def test_copy_refuses_a_password_in_src_or_dst_before_opening_either(
    argument: str, release: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server, copy = f"postgresql://ims:{SECRET}@127.0.0.1:1/ledger", tmp_path / "copy.sqlite"
    pair = [server, str(copy)] if argument == "SRC" else [str(release), server]
    code, out, err = _run(["ledger", "copy", *pair], capsys)
    assert (code, out, err.count("\n")) == (2, "", 1) and SECRET not in err
    assert err.startswith(f"ims-nb ledger copy: error: argument {argument}: postgresql+psycopg://ims:***@127.0.0.1:1/")
    assert "a password is never a command-line option; put it in $PGPASSWORD or ~/.pgpass (see" in err
    assert not copy.exists()  # neither opened: the release's ledger is still at its schema version
    assert _run(["ledger", "info", "--ledger", str(release)], capsys)[1].count("schema version: 3 ") == 1


def test_an_unreachable_server_is_one_line_without_its_password(
    release: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    unreachable = f"postgresql://ims:{SECRET}@127.0.0.1:1/ledger"
    monkeypatch.setenv("IMS_NB_LEDGER", unreachable)  # --ledger refuses a password: the environment may hold one
    monkeypatch.setenv(PGPASSWORD, SECRET)  # and copy's SRC and DST too
    for argv in (["upgrade"], ["info"], ["copy", str(release), unreachable.replace(f":{SECRET}@", "@")]):
        code, out, err = _run(["ledger", *argv], capsys)
        assert code == 2 and out == "" and err.count("\n") == 1 and "Traceback" not in err, argv
        assert SECRET not in err and ("ims@" if argv[0] == "copy" else "ims:***@") + "127.0.0.1:1/ledger" in err, argv
