"""``--regions`` on ``ims-nb sim``, ``lab`` and ``app``: the child simulator's regions and the SDK's regions file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ims_nb.cli._children import ENV_SDK_REGIONS_FILE, sim_command, simulator_for_children, stopped_together
from ims_nb.cli._main import build_parser

REGIONS = "cn-north-4,ap-southeast-1"


@pytest.mark.parametrize("verb", ["sim", "lab", "app"])
def test_regions_must_be_a_list_without_empty_or_repeated_items(verb: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert build_parser().parse_args([verb, "--regions", REGIONS]).regions == REGIONS.split(",")
    for bad in ("cn-north-4,,ap-southeast-1", "cn-north-4,cn-north-4", ""):
        with pytest.raises(SystemExit):
            build_parser().parse_args([verb, "--regions", bad])
    assert "--regions" in capsys.readouterr().err


def test_lab_points_its_kernels_at_the_regions_file_its_simulator_wrote(tmp_path: Path) -> None:
    args = build_parser().parse_args(["lab", "--regions", REGIONS, "--manual-clock", "--images", "20",
                                      "--state", str(tmp_path / "sim.db")])  # fmt: skip
    with stopped_together() as children:
        started = simulator_for_children(args, children)
        assert not isinstance(started, int)
        line, env = started
    regions_file = Path(env[ENV_SDK_REGIONS_FILE])
    assert regions_file == tmp_path / "sim.db.regions.yaml"
    assert f"--regions-file={regions_file}" in sim_command(args) and f"--regions={REGIONS}" in sim_command(args)
    text = regions_file.read_text()
    regions = json.loads(env["IMS_NB_SIM"])["regions"]
    assert list(regions) == REGIONS.split(",") and line["endpoint"] == regions["cn-north-4"]["endpoint"]
    for region, where in regions.items():
        assert f"- id: '{region}'\n    endpoint: '{where['endpoint']}'" in text
