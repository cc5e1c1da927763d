"""What every fuzz suite shares: Hypothesis settings (scaled by ``IMS_NB_FUZZ_SCALE``) and the count of cases tried."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

#: ``IMS_NB_FUZZ_SCALE=10`` multiplies every example count (the README's numbers are for scale 1).
SCALE = max(1, int(os.environ.get("IMS_NB_FUZZ_SCALE", "1") or 1))


def fuzz(examples: int) -> settings:
    """Deterministic runs of ``examples`` (times the scale) examples, no deadline, no example database."""
    return settings(
        max_examples=examples * SCALE,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
        ],
    )


def case_summary(title: str, cases: Counter[str], extra: Callable[[], str] = str) -> Any:
    """A module fixture (autouse) that prints, after the module, how many cases of each kind were tried."""

    @pytest.fixture(scope="module", autouse=True)
    def _summary() -> Iterator[None]:
        yield
        parts = ", ".join(f"{name} {count}" for name, count in cases.items())
        print(f"\n{title}: {sum(cases.values())} ({parts}){extra()}")

    return _summary
