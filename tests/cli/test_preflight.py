"""``ims-nb preflight``: exit codes, rules and messages shown, filters, the three formats, ``-o``, bad arguments."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from ims_nb import rules
from ims_nb.preflight import SUMMARY_COLUMNS, preflight
from tests.cli.helpers import connect_line, run_cli, run_main
from tests.helpers import cli_simulator

GiB = 1024**3
BUCKET = "ims-exports-cn-north-4"
TEMPLATE = f"{BUCKET}:preflight/{{name}}-{{id8}}.{{ext}}"
FOOTER = re.compile(r"^(\d+) images?: (\d+) exportable, (\d+) refused, (\d+) with warnings$", re.MULTILINE)


# --- fixtures: one `ims-nb sim --port 0 --seed 0` process, its inventory, a machine without credentials ---


@pytest.fixture(scope="module")
def sim_line() -> Iterator[str]:
    """The JSON line of ``ims-nb sim --port 0 --seed 0`` (200 images), running in a subprocess."""
    with cli_simulator() as line:
        yield line


def _main(argv: list[str]) -> int:
    return run_main(["preflight", *argv])


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run_cli(["preflight", *args], env)


def _rows(out: str) -> dict[str, list[str]]:
    """The summary table's rows (up to the blank line), by image id: the whitespace-separated cells."""
    summary = out.split("\n\n")[0].splitlines()
    assert summary[0].split() == ["ID", "NAME", "TARGET", "EXPORTABLE", "BLOCKING", "WARNINGS", "RECOMMENDED"]
    return {line.split()[0]: line.split() for line in summary[1:]}


def _violation_lines(out: str) -> list[str]:
    parts = out.split("\n\n")
    assert len(parts) <= 2
    if len(parts) == 1:
        return []
    lines = parts[1].splitlines()
    assert lines[0].split() == ["ID", "SEVERITY", "RULE", "CODE", "MESSAGE;", "FIX"]
    return lines[1:]


def _totals(err: str) -> tuple[int, int, int, int]:
    found = FOOTER.findall(err)
    assert len(found) == 1, err
    total, exportable, refused, warned = map(int, found[0])
    return total, exportable, refused, warned


def _assert_one_clean_line(err: str, *forbidden: str) -> None:
    errors = [line for line in err.splitlines() if not line.startswith("SIMULATOR:")]
    assert len(errors) == 1 and errors[0].startswith("ims-nb preflight: error: "), err
    assert "Traceback" not in err
    for text in forbidden:
        assert text not in err


# --- exit codes: 0 all exportable, 3 any refused -------------------------------------------------------


def test_exportable_ids_exit_0_in_a_real_process(
    sim_line: str, sim_info: dict[str, str], clean: pd.DataFrame, bare_env: dict[str, str]
) -> None:
    ids = clean["id"].tolist()[:3]
    result = _run([*ids, "--bucket-url", TEMPLATE, "--format", "qcow2", "--sim", sim_line], bare_env)
    assert result.returncode == 0, result.stderr
    rows = _rows(result.stdout)
    assert list(rows) == ids
    for image_id, cells in rows.items():
        name = clean.set_index("id").loc[image_id, "name"]
        assert cells[1:] == [name, f"{BUCKET}:preflight/{name}-{image_id[:8]}.qcow2", "yes", "-", "-", "normal"]
    assert _violation_lines(result.stdout) == []
    assert result.stderr.count("SIMULATOR:") == 1 and "Traceback" not in result.stderr
    assert _totals(result.stderr) == (3, 3, 0, 0)
    assert sim_info["sk"] not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("kind", "rule", "code", "message", "fix"),
    [
        ("iso", "iso-image", "IMG.0167", "is an ISO image", None),
        ("full-ecs", "full-ecs-image", "IMG.0128", "is a full-ECS image",
         "export the system-disk and data-disk images separately"),
        # the simulator plays the strict rules, so through --sim an Ubuntu-derived image is an error, not a warning
        ("ubuntu-derived", "restricted-os-origin", "IMG.0071", "was created from the Ubuntu public image",
         "rebuild the image from an imported image file"),
    ],
)  # fmt: skip
def test_a_refused_image_exits_3_and_shows_the_rule_and_message(
    kind: str,
    rule: str,
    code: str,
    message: str,
    fix: str | None,
    sim_line: str,
    inventory: pd.DataFrame,
    clean: pd.DataFrame,
    bare_env: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    active = inventory[inventory["status"] == "active"]
    pick = {
        "iso": active["virtual_env_type"] == "IsoImage",
        "full-ecs": active["whole_image"].astype(bool),
        "ubuntu-derived": (active["platform"] == "Ubuntu") & active["source_image_id"].notna(),
    }[kind]
    refused = active[pick.fillna(False).astype(bool)].iloc[0]
    good = clean["id"].iloc[0]
    assert _main([good, refused["id"], "--bucket-url", TEMPLATE, "--format", "vhd", "--sim", sim_line]) == 3
    out, err = capsys.readouterr()
    rows = _rows(out)
    assert rows[good][3:] == ["yes", "-", "-", "normal"]
    assert rows[refused["id"]][3] == "no" and rule in rows[refused["id"]][4].split(",")
    violations = [line for line in _violation_lines(out) if line.split()[:3] == [refused["id"], "error", rule]]
    assert len(violations) == 1 and violations[0].split()[3] == code
    assert f"image {refused['name']} {message}" in violations[0]
    assert (f"; fix: {fix}" in violations[0]) if fix else ("fix:" not in violations[0])
    assert _totals(err) == (2, 1, 1, 0)
    assert not [line for line in _violation_lines(out) if line.startswith(good)]


def test_a_warm_bucket_refuses_every_image_the_account_sees(
    sim_line: str, inventory: pd.DataFrame, bare_env: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """No ids and no filters: every image, not only the private ones."""
    argv = ["--bucket-url", "ims-archive-warm:exports/{id}.{ext}", "--quick", "--output-format", "json"]
    assert _main([*argv, "--sim", sim_line]) == 3
    out, err = capsys.readouterr()
    records = json.loads(out)
    assert sorted(r["image_id"] for r in records) == sorted(inventory["id"])
    assert {"gold", "shared", "market"} <= set(inventory["image_type"])
    for record in records:
        assert record["exportable"] is False and "bucket-not-standard" in record["blocking"]
        warm = [v for v in record["violations"] if v["rule"] == "bucket-not-standard"]
        assert warm == [{
            "rule": "bucket-not-standard", "severity": "error", "code": "IMG.0069",
            "message": "bucket ims-archive-warm is of the WARM storage class, not STANDARD",
            "fix": "choose a Standard bucket in cn-north-4",
        }]  # fmt: skip
    assert _totals(err) == (len(inventory), 0, len(inventory), 0)


def test_fast_export_is_recommended_for_a_big_image_and_quick_clears_it(
    sim_line: str, inventory: pd.DataFrame, clean: pd.DataFrame, bare_env: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    f = inventory
    big = f[(f["size_bytes"] > 128 * GiB) & (f["size_bytes"] < 1024 * GiB) & f["id"].isin(clean["id"]).eq(False)]
    big = big[big["status"].eq("active") & big["source_image_id"].isna() & ~big["encrypted"].astype(bool)]
    big = big[big["image_type"].eq("private") & big["virtual_env_type"].eq("FusionCompute")]
    image_id = big["id"].iloc[0]
    assert _main([image_id, "--bucket-url", TEMPLATE, "--format", "qcow2", "--sim", sim_line]) == 3
    out, _ = capsys.readouterr()
    assert _rows(out)[image_id][3:] == ["no", "fast-export-required", "-", "fast"]
    assert "fix: use fast export (quick=True)" in _violation_lines(out)[0]
    assert _main([image_id, "--bucket-url", TEMPLATE, "--quick", "--sim", sim_line]) == 0
    out, _ = capsys.readouterr()
    row = _rows(out)[image_id]
    assert row[2].endswith(f"-{image_id[:8]}.zvhd2") and row[3:] == ["yes", "-", "-", "fast"]


# --- which images -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "filters"),
    [
        (["--imagetype", "private", "--status", "active"], {"imagetype": "private", "status": "active"}),
        (["--platform", "Ubuntu"], {"platform": "Ubuntu"}),
        (["--virtual-env-type", "IsoImage"], {"virtual_env_type": "IsoImage"}),
        (["--whole-image"], {"whole_image": True}),
        (["--filter", "os_bit=64", "--max-items", "7"], {"os_bit": "64", "max_items": 7}),
    ],
)
def test_filters_select_the_images_the_listing_selects(
    argv: list[str],
    filters: dict[str, Any],
    sim_line: str,
    sim_info: dict[str, str],
    inventory: pd.DataFrame,
    bare_env: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with connect_line(sim_info) as client:
        expected = [record["id"] for record in client.iter_images(**filters)]
    code = _main([*argv, "--bucket-url", TEMPLATE, "--format", "vmdk", "--output-format", "csv", "--sim", sim_line])
    out, err = capsys.readouterr()
    ids = [row["image_id"] for row in csv.DictReader(io.StringIO(out))]
    assert ids == expected and 0 < len(ids) < len(inventory)
    total, _, refused, _ = _totals(err)
    assert total == len(ids) and code == (3 if refused else 0)


def test_iso_and_full_ecs_filters_select_only_refused_images(
    sim_line: str, bare_env: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    for argv, rule in ((["--virtual-env-type", "IsoImage"], "iso-image"), (["--whole-image"], "full-ecs-image")):
        assert _main([*argv, "--bucket-url", TEMPLATE, "--format", "qcow2", "--sim", sim_line]) == 3
        out, err = capsys.readouterr()
        assert all(cells[3] == "no" and rule in cells[4].split(",") for cells in _rows(out).values())
        assert sum(rule in line.split() for line in _violation_lines(out)) == len(_rows(out))


# --- details, warnings, formats, -o ------------------------------------------------------------------


def test_warnings_of_exportable_images_are_listed_with_details(
    sim_line: str, clean: pd.DataFrame, bare_env: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = clean["id"].tolist()[:2]
    argv = [*ids, "--bucket-url", f"{BUCKET}:preflight/{{id8}}.img", "--format", "vhd", "--sim", sim_line]
    assert _main(argv) == 0  # a warning does not refuse
    out, err = capsys.readouterr()
    assert all(cells[3:] == ["yes", "-", "object-extension-mismatch", "normal"] for cells in _rows(out).values())
    assert _violation_lines(out) == []  # named in the summary; their messages only with --details
    assert _totals(err) == (2, 2, 0, 2)
    assert _main([*argv, "--details"]) == 0
    lines = _violation_lines(capsys.readouterr().out)
    assert [line.split()[:4] for line in lines] == [[i, "warning", "object-extension-mismatch", "-"] for i in ids]
    assert lines[0].endswith(f"object name preflight/{ids[0][:8]}.img does not end in the format's extension; "
                             "fix: name the file .vhd")  # fmt: skip


def test_csv_is_the_summary(
    sim_line: str, inventory: pd.DataFrame, bare_env: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--max-items", "40", "--bucket-url", TEMPLATE, "--format", "zvhd", "--output-format", "csv"]
    assert _main([*argv, "--sim", sim_line]) == 3
    out, err = capsys.readouterr()
    back = pd.read_csv(io.StringIO(out), keep_default_na=False)
    assert list(back.columns) == list(SUMMARY_COLUMNS)
    assert back["image_id"].tolist() == inventory["id"].tolist()[:40]
    assert set(back["exportable"]) == {True, False}
    assert all(rule in rules.RULE_IDS for cell in back["blocking"] for rule in cell.split(";") if cell)
    assert set(back.loc[~back["exportable"], "recommended"]) <= {"", "normal", "fast"}
    assert all(back.loc[back["exportable"], "blocking"] == "")
    total, exportable, refused, _ = _totals(err)
    assert (total, exportable, refused) == (40, int(back["exportable"].sum()), int((~back["exportable"]).sum()))


def test_json_has_every_violation_of_every_image(
    sim_line: str, sim_info: dict[str, str], bare_env: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--max-items", "40", "--bucket-url", f"{BUCKET}:x/{{id8}}.raw", "--format", "qcow2"]
    assert _main([*argv, "--output-format", "json", "--sim", sim_line]) == 3
    records = json.loads(capsys.readouterr().out)
    assert [list(record) for record in records] == [[*SUMMARY_COLUMNS, "violations"]] * 40
    with connect_line(sim_info) as client:
        frame = client.images(max_items=40)
        expected = preflight(frame, bucket_url=f"{BUCKET}:x/{{id8}}.raw", file_format="qcow2", client=client,
                                    profile=rules.SIMULATOR_PROFILE)  # fmt: skip
    shown = [(r["image_id"], v["rule"], v["severity"], v["message"]) for r in records for v in r["violations"]]
    assert sorted(shown) == sorted(expected[["image_id", "rule", "severity", "message"]].itertuples(index=False))
    for record in records:
        assert record["exportable"] is (not record["blocking"])
        assert record["warnings"] == ["object-extension-mismatch"]  # the .raw key, on every image
        assert record["blocking"] == [v["rule"] for v in record["violations"] if v["severity"] == "error"]


@pytest.mark.parametrize("output_format", ["table", "csv", "json"])
def test_output_file_keeps_stdout_empty(
    output_format: str,
    sim_line: str,
    clean: pd.DataFrame,
    inventory: pd.DataFrame,
    bare_env: Any,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    iso = inventory.loc[inventory["virtual_env_type"] == "IsoImage", "id"].iloc[0]
    target = tmp_path / f"preflight.{output_format}"
    argv = [clean["id"].iloc[0], iso, "--bucket-url", TEMPLATE, "--format", "qcow2", "--output-format", output_format]
    assert _main([*argv, "-o", str(target), "--sim", sim_line]) == 3
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("SIMULATOR:") and _totals(err) == (2, 1, 1, 0)
    text = target.read_text(encoding="utf-8")
    assert clean["id"].iloc[0] in text and iso in text
    if output_format == "table":
        assert "is an ISO image" in text
    assert [p.name for p in tmp_path.iterdir()] == [target.name]  # no temporary file left behind


def test_the_table_fits_a_narrow_terminal(
    sim_line: str, bare_env: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    assert _main(["--max-items", "10", "--bucket-url", TEMPLATE, "--format", "qcow2", "--sim", sim_line]) == 3
    summary = capsys.readouterr().out.split("\n\n")[0].splitlines()
    assert len(summary) == 11 and max(map(len, summary)) <= 100
    assert summary[0].split()[0] == "ID" and {"EXPORTABLE", "BLOCKING"} <= set(summary[0].split())


def test_one_target_for_several_images_is_warned_of(
    sim_line: str, clean: pd.DataFrame, bare_env: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = clean["id"].tolist()[:3]
    assert _main([*ids, "--bucket-url", f"{BUCKET}:one.vhd", "--format", "vhd", "--sim", sim_line]) == 0
    err = capsys.readouterr().err
    assert f"ims-nb preflight: warning: 3 images would be exported to {BUCKET}:one.vhd" in err


def test_each_target_object_is_looked_up_once(
    sim_line: str, clean: pd.DataFrame, bare_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    heads: list[str] = []
    original = httpx.HTTPTransport.handle_request

    def record(self: httpx.HTTPTransport, request: httpx.Request) -> httpx.Response:
        if request.method == "HEAD":
            heads.append(request.url.path)
        return original(self, request)

    monkeypatch.setattr(httpx.HTTPTransport, "handle_request", record)
    ids = clean["id"].tolist()[:4]
    assert _main([*ids, "--bucket-url", TEMPLATE, "--format", "qcow2", "--quiet", "--sim", sim_line]) == 0
    objects = [path for path in heads if path.count("/") > 1]
    assert len(objects) == len(set(objects)) == 4


def test_progress_counts_requests_on_stderr(sim_line: str, bare_env: dict[str, str]) -> None:
    result = _run(["--bucket-url", TEMPLATE, "--quick", "--output-format", "csv", "--progress", "--sim", sim_line],
                  bare_env)  # fmt: skip
    assert result.returncode == 3
    assert re.search(r"ims-nb preflight: [\d,]+ requests, 1 page, [\d.]+ s elapsed", result.stderr)
    assert result.stdout.startswith("image_id,name,") and "elapsed" not in result.stdout


# --- errors ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--format", "qcow2"], "the following arguments are required: --bucket-url"),
        (["--bucket-url", TEMPLATE], "one of the arguments --format --quick is required"),
        (["--bucket-url", TEMPLATE, "--format", "qcow2", "--quick"], "not allowed with argument"),
        (["--bucket-url", f"{BUCKET}:x/{{size}}.qcow2", "--format", "qcow2"], "key template"),
        (["--bucket-url", BUCKET, "--format", "qcow2"], "use BUCKET:KEY"),
        (["--bucket-url", TEMPLATE, "--format", "raw"], "invalid choice: 'raw'"),
        (["--bucket-url", TEMPLATE, "--quick", "--output-format", "parquet"], "invalid choice: 'parquet'"),
        (["--bucket-url", TEMPLATE, "--quick", "--created-at", "soon"], "OP:TIME"),
        (["--bucket-url", TEMPLATE, "--quick", "--filter", "flavour=big"], "flavour"),
        (["IMAGE", "--bucket-url", TEMPLATE, "--quick", "--status", "active"], "IMAGE_IDs or listing filters"),
        (["IMAGE", "--bucket-url", TEMPLATE, "--quick", "--max-items", "3"], "IMAGE_IDs or listing filters"),
        (["IMAGE", "00000000-0000-4000-8000-00000000dead", "--bucket-url", TEMPLATE, "--quick"],
         "no such image: 00000000-0000-4000-8000-00000000dead"),
        (["--bucket-url", TEMPLATE, "--quick", "-o", "/nonexistent-folder/pf.csv"], "does not exist"),
        (["--bucket-url", TEMPLATE, "--quick", "--region", "eu-west-0"], "the simulator plays region"),
    ],
)  # fmt: skip
def test_bad_arguments_exit_2_with_one_line(
    argv: list[str],
    says: str,
    sim_line: str,
    clean: pd.DataFrame,
    bare_env: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = [clean["id"].iloc[0] if arg == "IMAGE" else arg for arg in argv]
    assert _main([*argv, "--sim", sim_line]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    _assert_one_clean_line(err, json.loads(sim_line)["sk"])
    assert says in err


def test_a_service_error_exits_1_with_one_line(
    sim_line: str, sim_info: dict[str, str], bare_env: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    body = json.dumps({"error": {"code": "IMG.0001", "message": "The parameter is invalid."}})
    fault = {"kind": "response", "method": "GET", "path": "^/v2/cloudimages", "status": 400, "body": body}
    httpx.post(f"{sim_info['endpoint']}/_sim/faults", json=fault).raise_for_status()
    assert _main(["--max-items", "3", "--bucket-url", TEMPLATE, "--quick", "--sim", sim_line]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    _assert_one_clean_line(err, sim_info["sk"])
    assert "400 IMG.0001: The parameter is invalid." in err


# --- documentation -----------------------------------------------------------------------------------


def test_help_documents_the_exit_codes_and_the_template(capsys: pytest.CaptureFixture[str]) -> None:
    assert _main(["--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    for part in ("3 some image would be refused", "--output-format {table,csv,json}", "--details",
                 "(--format {qcow2,vhd,zvhd,vmdk} | --quick)", "{id8}", "--filter NAME=VALUE", "--sim LINE",
                 "N images: X exportable, Y refused, Z with warnings"):  # fmt: skip
        assert part in text, part
