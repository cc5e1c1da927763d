"""Poll pacing: the service's cadence, scaled to a simulator's faster clock, and what a failed clock read falls
back to."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Iterator
from typing import Any

import pytest

import ims_nb
from ims_nb import ImsClient, SimulatorWarning
from ims_nb.client.pacing import MIN_INTERVAL, SERVICE, Pacing, pacing_for
from ims_nb.sim import Simulator


def test_the_service_pacing_and_its_keyword_arguments() -> None:
    assert (SERVICE.interval, SERVICE.max_interval, SERVICE.stall_after) == (5.0, 60.0, 1800.0)
    assert SERVICE.as_kwargs() == {"interval": 5.0, "max_interval": 60.0, "stall_after": 1800.0}


@pytest.mark.parametrize(
    ("scale", "expected"),
    [
        (1.0, SERVICE),
        (60.0, Pacing(5.0 / 60, 1.0, 30.0)),
        (0.5, Pacing(10.0, 120.0, 3600.0)),  # a clock slower than real time polls less often
        (600.0, Pacing(MIN_INTERVAL, 0.1, 3.0)),  # 5 / 600 is under the floor
        (1e6, Pacing(MIN_INTERVAL, MIN_INTERVAL, MIN_INTERVAL)),  # nothing goes below the floored interval
    ],
)
def test_scaled_divides_by_the_clock_speed_and_floors_at_min_interval(scale: float, expected: Pacing) -> None:
    scaled = SERVICE.scaled(scale)
    assert scaled.as_kwargs() == pytest.approx(expected.as_kwargs())
    assert scaled.interval >= MIN_INTERVAL
    assert scaled.max_interval >= scaled.interval and scaled.stall_after >= scaled.interval


def test_scaled_keeps_max_interval_at_least_interval_whatever_it_started_from() -> None:
    odd = Pacing(interval=2.0, max_interval=1.0, stall_after=0.5)
    scaled = odd.scaled(10.0)
    assert scaled == Pacing(0.2, 0.2, 0.2)


def test_a_real_client_gets_the_service_pacing_without_a_request(
    sim_client: ImsClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_request(*args: Any, **kwargs: Any) -> dict[str, Any]:
        raise AssertionError("pacing_for asked something of a real account")

    monkeypatch.setattr(sim_client, "simulator_clock", no_request)
    assert not sim_client.settings.is_simulator
    assert pacing_for(sim_client) is SERVICE
    assert pacing_for(object()) is SERVICE


def test_a_simulator_at_600x_gets_the_service_pacing_divided_by_600() -> None:
    with pytest.warns(SimulatorWarning), ims_nb.connect(simulator={"images": 5, "time_scale": 600}) as client:
        assert pacing_for(client) == SERVICE.scaled(600)


def test_a_manual_clock_simulator_gets_the_service_pacing(
    fresh_sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IMS_NB_SIM", json.dumps(fresh_sim.info.as_json_dict()))
    with pytest.warns(SimulatorWarning), ims_nb.connect() as client:
        assert pacing_for(client) is SERVICE


@pytest.fixture()
def closed_port() -> Iterator[int]:
    """A loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    yield port


def test_an_unreachable_simulator_gets_the_service_pacing_and_an_info_log(
    sim: Simulator, closed_port: int, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    line = dict(sim.info.as_json_dict(), endpoint=f"http://127.0.0.1:{closed_port}")
    monkeypatch.setenv("IMS_NB_SIM", json.dumps(line))
    caplog.set_level(logging.INFO, logger="ims_nb")
    with pytest.warns(SimulatorWarning), ims_nb.connect() as client:
        assert pacing_for(client) is SERVICE
    [record] = [r for r in caplog.records if "clock could not be read" in r.getMessage()]
    assert record.levelno == logging.INFO and record.name == "ims_nb"
