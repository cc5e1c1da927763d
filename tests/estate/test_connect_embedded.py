"""``connect_estate(simulator={...})``: the options of an embedded multi-region simulator, as notebooks pass them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import ims_nb
from ims_nb.errors import ConfigError
from ims_nb.sim import Simulator

pytestmark = pytest.mark.filterwarnings("ignore::ims_nb.SimulatorWarning")
REGIONS = ["cn-north-4", "ap-southeast-1"]
OPTIONS = {"regions": REGIONS, "images": 12, "time_scale": 3600}


def test_options_start_an_embedded_simulator_of_those_regions(clean_env: Path) -> None:
    with ims_nb.connect_estate(simulator=OPTIONS) as estate:
        assert estate.owns_simulator and estate.is_simulator
        assert sorted(estate.regions) == sorted(REGIONS)
        images = estate.images()
        assert set(images["region"]) == set(REGIONS)
        clock = next(iter(estate.values())).simulator_clock()
        assert clock["scale"] == 3600


def test_wanted_regions_serve_when_the_options_name_none(clean_env: Path) -> None:
    with ims_nb.connect_estate(["ap-southeast-3"], simulator={"images": 5}) as estate:
        assert estate.regions == ["ap-southeast-3"] and estate.owns_simulator


def test_options_give_way_to_the_lab_simulator(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with Simulator(seed=0, images=8, manual_clock=True) as lab:
        monkeypatch.setenv("IMS_NB_SIM", json.dumps(lab.info.line()))
        with ims_nb.connect_estate(simulator=OPTIONS) as estate:
            assert not estate.owns_simulator
            assert estate.regions == [lab.info.region]


@pytest.mark.parametrize(
    "options",
    [{"regions": "cn-north-4"}, {"regions": []}, {"regions": [4]}, {"colour": "red"}, {"images": -1}],
)
def test_bad_options_are_a_config_error(clean_env: Path, options: dict[str, object]) -> None:
    with pytest.raises(ConfigError, match="simulator option"):
        ims_nb.connect_estate(simulator=options)
