"""``connect(simulator={...})``: the options reach the embedded simulator, bad ones are ConfigErrors that name
them, and they are ignored when credentials or ``$IMS_NB_SIM`` are found."""

from __future__ import annotations

import json
import math
from typing import Any

import httpx
import pytest

import ims_nb
from ims_nb import ImsClient, SimulatorWarning
from ims_nb.client.config import ENV_AK, ENV_SK
from ims_nb.client.connection import SIMULATOR_OPTIONS
from ims_nb.errors import ConfigError
from ims_nb.sim import Simulator


def connect_embedded(**options: Any) -> ImsClient:
    with pytest.warns(SimulatorWarning, match="no credentials configured"):
        return ims_nb.connect(simulator=options)


def sim_clock(client: ImsClient) -> dict[str, Any]:
    return dict(httpx.get(f"{client.endpoints.ims}/_sim/clock").json())


def test_the_known_options() -> None:
    assert set(SIMULATOR_OPTIONS) == {"seed", "images", "time_scale", "manual_clock"}


def test_images_and_time_scale_reach_the_embedded_simulator() -> None:
    with connect_embedded(images=60, time_scale=600) as client:
        assert isinstance(client.settings.simulator, Simulator) and client.settings.is_simulator
        assert len(client.images()) == 60  # (a world holds at least its 38 guaranteed images)
        clock = sim_clock(client)
        assert (clock["manual"], clock["scale"]) == (False, 600)


def test_a_manual_clock_reaches_the_embedded_simulator() -> None:
    with connect_embedded(images=3, manual_clock=True) as client:
        first = sim_clock(client)
        assert first["manual"] is True
        assert sim_clock(client)["timestamp"] == first["timestamp"]  # it stands still


def test_the_seed_reaches_the_embedded_simulator() -> None:
    worlds = []
    for seed in (0, 1, 0):
        with connect_embedded(seed=seed, images=5, manual_clock=True) as client:
            worlds.append(sorted(client.images()["id"]))
    assert worlds[0] == worlds[2] != worlds[1]


def test_closing_the_client_stops_its_simulator() -> None:
    client = connect_embedded(images=1)
    endpoint = client.endpoints.ims
    client.close()
    assert client.settings.simulator is None
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{endpoint}/_sim/health", timeout=2.0)


def test_an_unknown_option_is_named_with_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown simulator option\(s\): colour, speed \(known: seed, images"):
        ims_nb.connect(simulator={"images": 3, "speed": 2, "colour": "red"})


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("images", "10"),
        ("images", True),  # a bool is not a count
        ("images", 2.5),
        ("seed", None),
        ("time_scale", "fast"),
        ("time_scale", False),
        ("manual_clock", 1),
        ("manual_clock", "yes"),
    ],
)
def test_an_option_of_the_wrong_type_is_named(name: str, value: Any) -> None:
    with pytest.raises(ConfigError, match=f"simulator option {name} has the wrong type: {value!r}"):
        ims_nb.connect(simulator={name: value})


@pytest.mark.parametrize("options", [["images"], "images=3", 3, ("seed", 0)])
def test_simulator_must_be_a_dict(options: Any) -> None:
    with pytest.raises(ConfigError, match=f"simulator must be a dict of seed, .*, not {type(options).__name__}"):
        ims_nb.connect(simulator=options)


@pytest.mark.parametrize(("options", "reason"), [({"images": -1}, "images"), ({"time_scale": 0}, "time_scale")])
def test_values_the_simulator_refuses_are_config_errors(options: dict[str, Any], reason: str) -> None:
    with pytest.raises(ConfigError, match=f"simulator option {reason} must"):
        ims_nb.connect(simulator=options)


@pytest.mark.filterwarnings("ignore::ims_nb.SimulatorWarning")
@pytest.mark.parametrize("time_scale", [math.nan, math.inf, 1e12])
def test_a_time_scale_the_clock_cannot_hold_is_a_config_error(time_scale: float) -> None:
    with pytest.raises(ConfigError, match="time"):
        client = ims_nb.connect(simulator={"time_scale": time_scale})
        client.close()


def test_options_are_ignored_when_credentials_are_given(fresh_sim: Simulator) -> None:
    info = fresh_sim.info
    with ims_nb.connect(
        ak=info.ak, sk=info.sk, project_id=info.project_id, endpoint=info.endpoint, simulator={"images": 3}
    ) as client:
        assert client.settings.simulator is None and not client.settings.is_simulator
        assert len(client.images()) == 200


def test_options_are_ignored_when_credentials_are_in_the_environment(
    fresh_sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    info = fresh_sim.info
    monkeypatch.setenv(ENV_AK, info.ak)
    monkeypatch.setenv(ENV_SK, info.sk)
    with ims_nb.connect(endpoint=info.endpoint, simulator={"images": 3, "time_scale": 600}) as client:
        assert client.settings.simulator is None and not client.settings.is_simulator
        assert len(client.images()) == 200


def test_options_are_ignored_when_ims_nb_sim_is_set(fresh_sim: Simulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMS_NB_SIM", json.dumps(fresh_sim.info.as_json_dict()))
    with pytest.warns(SimulatorWarning), ims_nb.connect(simulator={"images": 3, "time_scale": 600}) as client:
        assert client.settings.simulator is None and client.settings.is_simulator
        assert client.endpoints.ims == fresh_sim.endpoint
        assert len(client.images()) == 200
        assert sim_clock(client)["manual"] is True  # the session simulator's clock, untouched


def test_bad_options_are_refused_even_when_they_would_be_ignored(fresh_sim: Simulator) -> None:
    info = fresh_sim.info
    with pytest.raises(ConfigError, match="unknown simulator option"):
        ims_nb.connect(ak=info.ak, sk=info.sk, endpoint=info.endpoint, simulator={"imgaes": 3})
