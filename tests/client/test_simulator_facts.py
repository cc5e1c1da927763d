"""What a client knows of a simulator: decided once at connection (``connect_simulator``, ``$IMS_NB_SIM``, the
embedded one; never explicit keys), the rule profile that follows from it, and its clock read through the client."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

import ims_nb
from ims_nb import ImsClient, SimulatorWarning
from ims_nb.client import connect_simulator
from ims_nb.errors import ConfigError, TransportError
from ims_nb.preflight import profile_of
from ims_nb.rules import SIMULATOR_PROFILE
from ims_nb.sim import Simulator
from tests.helpers import RequestLog


def test_a_connection_from_the_simulators_line_knows_it_is_a_simulator(fresh_sim: Simulator) -> None:
    with connect_simulator(fresh_sim.info.as_json_dict()) as client:
        assert client.settings.is_simulator and client.settings.simulator is None
        assert ", SIMULATOR)" in repr(client) and fresh_sim.info.sk not in repr(client)
        assert profile_of(client) is SIMULATOR_PROFILE
        assert len(list(client.iter_images(max_items=3))) == 3
        twin = client.to_async()
        assert twin.settings.is_simulator
        asyncio.run(twin.aclose())


def test_explicit_keys_to_the_simulators_endpoint_are_an_account(sim_client: ImsClient) -> None:
    assert not sim_client.settings.is_simulator and ", SIMULATOR" not in repr(sim_client)
    assert profile_of(sim_client) is not SIMULATOR_PROFILE


def test_the_environment_line_and_the_embedded_simulator_are_simulators(
    fresh_sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IMS_NB_SIM", json.dumps(fresh_sim.info.as_json_dict()))
    with pytest.warns(SimulatorWarning), ims_nb.connect() as client:
        assert client.settings.is_simulator and profile_of(client) is SIMULATOR_PROFILE


@pytest.mark.parametrize("info", [{}, {"endpoint": "http://127.0.0.1:1"}, ["endpoint"], None])
def test_an_incomplete_simulator_info_is_a_config_error_that_names_the_fields(info: Any) -> None:
    with pytest.raises(ConfigError, match="endpoint, region, project_id, ak, sk"):
        connect_simulator(info)


def test_connect_simulator_takes_the_transport_options_and_refuses_others(fresh_sim: Simulator) -> None:
    with pytest.raises(ConfigError, match="unknown option"):
        connect_simulator(fresh_sim.info.as_json_dict(), simulator={"seed": 1})
    with connect_simulator(fresh_sim.info.as_json_dict(), page_size=7, timeout=3.0) as client:
        assert client.settings.page_size == 7 and client.settings.timeout.read == 3.0


def test_the_simulators_clock_is_read_and_moved_through_the_client(fresh_sim: Simulator, control: httpx.Client) -> None:
    with connect_simulator(fresh_sim.info.as_json_dict()) as client:
        clock = client.simulator_clock()
        assert clock["manual"] is True and clock == control.get("/clock").json()
        moved = client.simulator_clock(advance=90.0)
        assert moved["timestamp"] == pytest.approx(clock["timestamp"] + 90.0)


def test_the_async_client_reads_the_clock_too_and_closes_what_it_opened(fresh_sim: Simulator) -> None:
    async def run() -> dict[str, Any]:
        async with connect_simulator(fresh_sim.info.as_json_dict()).to_async() as client:
            return client.simulator_clock(advance=5.0)

    assert asyncio.run(run())["manual"] is True


def test_a_real_account_never_gets_a_control_plane_call(sim_client: ImsClient, sent: RequestLog) -> None:
    with pytest.raises(ConfigError, match="only a simulator has a clock"):
        sim_client.simulator_clock()
    assert sent.requests == []


def test_an_unreachable_control_plane_is_a_transport_error(sim: Simulator) -> None:
    line = dict(sim.info.as_json_dict(), endpoint="http://127.0.0.1:1")
    with connect_simulator(line) as client, pytest.raises(TransportError, match="/_sim/clock"):
        client.simulator_clock()
