"""The client tests run on a machine without credentials: every test here gets ``clean_env`` (tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _no_credentials_of_this_machine(clean_env: Path) -> Path:
    """No HUAWEICLOUD_SDK_* or IMS_NB_SIM variables, a missing credentials file: each test says what it uses."""
    return clean_env
