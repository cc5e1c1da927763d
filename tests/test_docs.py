"""The README documents what the code offers: set-up commands, routes, control actions, codes."""

from __future__ import annotations

import re
from pathlib import Path

from ims_nb.sim import api, control, export_checks

README = (Path(__file__).parent.parent / "README.md").read_text()


def test_readme_opens_with_the_two_commands() -> None:
    first_block = README.split("```")[1]
    assert "make lab" in first_block and "make test" in first_block


def test_every_simulator_route_is_in_the_coverage_table() -> None:
    for route in api.ROUTES:
        path = route.pattern.pattern.strip("^$").replace("/?", "")
        path = re.sub(r"\(\?P<(\w+)>\[\^/\]\+\)", r"{\1}", path)
        path = path.replace("{image_id}", "{id}")
        assert f"`{route.method} {path}" in README, f"{route.method} {path} missing from the README"


def test_every_control_action_is_documented() -> None:
    section = README.split("**Control plane**")[1].split("###")[0]
    for _method, path in control.ACTIONS:
        assert path.removeprefix("/_sim/") in section, path


def test_every_chosen_code_is_in_the_refusal_table() -> None:
    for code in set(export_checks.CHOSEN.values()):
        assert f"`{code}` (*chosen*" in README, code
