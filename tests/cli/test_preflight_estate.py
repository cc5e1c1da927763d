"""``ims-nb preflight --regions/--projects``: each row judged in its own region, against its own region's bucket."""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest

from tests.cli.conftest import ESTATE_REGIONS
from tests.cli.helpers import run_main

TEMPLATE = "ims-exports-{region}:{project}/{name}-{id8}.{ext}"
SELECTION = ["--imagetype", "private", "--format", "qcow2"]


def _preflight(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = run_main(["preflight", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def _bucket_rules(blocking: object) -> list[str]:
    rules = blocking.split(";") if isinstance(blocking, str) else []  # an empty CSV cell reads as NaN
    return [rule for rule in rules if rule.startswith("bucket")]


def test_a_region_template_gives_each_row_its_own_regions_standard_bucket(
    estate_sim_line: str, bare_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--regions", "all", "--sim", estate_sim_line, *SELECTION, "--bucket-url", TEMPLATE,
            "--output-format", "csv"]  # fmt: skip
    code, out, err = _preflight(argv, capsys)
    frame = pd.read_csv(io.StringIO(out))
    assert code == 3  # the seeded worlds hold refusable images
    assert list(frame.columns[:3]) == ["region", "project_id", "project_name"]
    assert set(frame["region"]) == set(ESTATE_REGIONS) and "cn-north-4_dev" in set(frame["project_name"])
    for region, project, url in zip(frame["region"], frame["project_name"], frame["bucket_url"], strict=True):
        assert url.startswith(f"ims-exports-{region}:{project}/"), url
    assert not frame["blocking"].map(_bucket_rules).map(len).any()  # every row's bucket is its region's Standard one
    assert frame["exportable"].any() and "exportable" in err
    assert json.loads(estate_sim_line)["sk"] not in out + err


def test_a_fixed_bucket_of_one_region_is_refused_for_the_other_regions_rows(
    estate_sim_line: str, bare_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    bucket_url = "ims-exports-cn-north-4:{project}/{name}-{id8}.{ext}"
    argv = ["--regions", "all", "--sim", estate_sim_line, *SELECTION, "--bucket-url", bucket_url, "--output-format",
            "csv"]  # fmt: skip
    code, out, _ = _preflight(argv, capsys)
    frame = pd.read_csv(io.StringIO(out))
    refused_for_bucket = frame["blocking"].map(_bucket_rules).map(len) > 0
    assert code == 3
    assert refused_for_bucket[frame["region"] != "cn-north-4"].all()
    assert not refused_for_bucket[frame["region"] == "cn-north-4"].any()


def test_projects_choose_and_json_says_where_each_image_is(
    estate_sim_line: str, bare_env: dict[str, str], monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    monkeypatch.setenv("IMS_NB_SIM", estate_sim_line)
    argv = ["--regions", "cn-north-4,ap-southeast-3", "--projects", "cn-north-4_dev,ap-southeast-3", *SELECTION,
            "--bucket-url", TEMPLATE, "--output-format", "json"]  # fmt: skip
    _, out, _ = _preflight(argv, capsys)
    records = json.loads(out)
    assert {(r["region"], r["project_name"]) for r in records} == {
        ("cn-north-4", "cn-north-4_dev"), ("ap-southeast-3", "ap-southeast-3"),
    }  # fmt: skip
    assert all("violations" in r for r in records)


def test_image_ids_are_found_in_whichever_region_holds_them(
    estate_sim_line: str, bare_env: dict[str, str], monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    monkeypatch.setenv("IMS_NB_SIM", estate_sim_line)
    monkeypatch.setenv("COLUMNS", "250")
    _, out, _ = _preflight(["--regions", "all", *SELECTION, "--bucket-url", TEMPLATE, "--output-format", "csv"], capsys)
    frame = pd.read_csv(io.StringIO(out))
    picked = [frame.loc[frame["region"] == region, "image_id"].iloc[0] for region in ESTATE_REGIONS[1:]]
    _, out, _ = _preflight(["--regions", "all", *picked, "--format", "qcow2", "--bucket-url", TEMPLATE], capsys)
    lines = out.splitlines()
    assert lines[0].split()[:2] == ["REGION", "PROJECT"]
    assert [line.split()[0] for line in lines[1:3]] == list(ESTATE_REGIONS[1:])


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--regions", "all", "--region", "cn-north-4"], "leave out --region"),
        (["--regions", "all", "--project-id", "0a1b"], "choose projects with --projects"),
        (["--projects", "cn-north-4_dev"], "give --regions too"),
        (["--regions", "all", "--bucket-url", "ims-{zone}:{name}.{ext}"], "fields: region, project"),
        (["--regions", "all", "no-such-image"], "no such image in the estate: no-such-image"),
    ],
)
def test_bad_combinations_exit_2_naming_the_fix(
    estate_sim_line: str, bare_env: dict[str, str], capsys: pytest.CaptureFixture[str], argv: list[str], words: str
) -> None:
    full = [*argv, "--sim", estate_sim_line, "--format", "qcow2"]
    if "--bucket-url" not in argv:
        full += ["--bucket-url", TEMPLATE]
    code, _, err = _preflight(full, capsys)
    assert code == 2 and words in err, err
