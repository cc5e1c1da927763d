"""``ims-nb jobs --user NAME --host NAME``: who launched what where, as columns and as filters (issue 15, item 4)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from ims_nb.exports.identity import Identity
from ims_nb.exports.ledger import Ledger
from ims_nb.vocab import GiB, Target
from tests.cli.helpers import run_main

#: (IAM user, host) of each row; None: a row whose user could not be learnt.
LAUNCHERS = [("ann", "hub-1"), ("ann", "hub-2"), ("bo", "hub-1"), (None, "hub-1")]


@pytest.fixture()
def team_ledger(tmp_path: Path) -> str:
    """A ledger whose four rows were launched by two users (and one unknown) on two hosts."""
    path = tmp_path / "team.sqlite"
    with Ledger(path) as ledger:
        for n, (user, host) in enumerate(LAUNCHERS):
            who = Identity("https://ims.cn-north-4.myhuaweicloud.com", "cn-north-4", "p1", f"AK KEY{n}", user=user,
                           host=host)  # fmt: skip
            ledger.bound_to(who).claim(image_id=f"img-{n}", target=Target("b", f"k{n}"), image_name=f"name-{n}",
                                       file_format="qcow2", quick=False, size_bytes=GiB, region="r")  # fmt: skip
    return str(path)


def jobs_csv(team_ledger: str, capsys: pytest.CaptureFixture[str], *options: str) -> list[dict[str, str]]:
    assert run_main(["jobs", "--ledger", team_ledger, "--output-format", "csv", *options]) == 0
    return list(csv.DictReader(io.StringIO(capsys.readouterr().out)))


@pytest.mark.parametrize(
    ("options", "images"),
    [
        ((), ["img-0", "img-1", "img-2", "img-3"]),
        (("--user", "ann"), ["img-0", "img-1"]),
        (("--host", "hub-1"), ["img-0", "img-2", "img-3"]),
        (("--user", "ann", "--host", "hub-1"), ["img-0"]),
        (("--user", "nobody"), []),
    ],
)
def test_jobs_filters_by_user_and_host(
    team_ledger: str, capsys: pytest.CaptureFixture[str], options: tuple[str, ...], images: list[str]
) -> None:
    assert [row["image_id"] for row in jobs_csv(team_ledger, capsys, *options)] == images


def test_the_csv_has_who_launched_each_job(team_ledger: str, capsys: pytest.CaptureFixture[str]) -> None:
    rows = jobs_csv(team_ledger, capsys)
    assert [(r["launched_user"], r["launched_host"], r["launched_by"]) for r in rows] == [
        ("ann", "hub-1", "AK KEY0"), ("ann", "hub-2", "AK KEY1"), ("bo", "hub-1", "AK KEY2"), ("", "hub-1", "AK KEY3")
    ]  # fmt: skip


def test_the_table_shows_user_and_host(
    team_ledger: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "240")
    assert run_main(["jobs", "--ledger", team_ledger, "--host", "hub-2"]) == 0
    header, *lines = capsys.readouterr().out.splitlines()
    assert {"USER", "HOST", "ACCOUNT"} <= set(header.split())
    assert len(lines) == 1 and "ann" in lines[0] and "hub-2" in lines[0]
