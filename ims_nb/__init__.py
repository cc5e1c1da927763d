"""ims-nb: export private Huawei Cloud IMS images to OBS from Jupyter, safely and in bulk."""

from __future__ import annotations

import importlib
import sys
from types import ModuleType
from typing import TYPE_CHECKING, Any

from ims_nb.errors import (
    ApiError,
    AuthError,
    ConfigError,
    EstateWarning,
    ImsNbError,
    InsecureTransportWarning,
    MalformedAnswerError,
    OutcomeUnknownError,
    ServerError,
    SimulatorWarning,
    ThrottledError,
    TransportError,
    WaitTimeoutError,
)

if TYPE_CHECKING:
    from ims_nb.client import AsyncImsClient, ImsClient
    from ims_nb.client.connection import connect, connect_async
    from ims_nb.client.retry import RetryPolicy
    from ims_nb.client.wire import BucketInfo
    from ims_nb.coverage import coverage, coverage_summary
    from ims_nb.estate import Estate, connect_estate
    from ims_nb.exports.gap import coverage_gap_plan, launch_gap
    from ims_nb.exports.history import jobs_frame
    from ims_nb.exports.launch import launch
    from ims_nb.exports.ledger import Ledger
    from ims_nb.exports.plan import plan_exports
    from ims_nb.exports.watch import watch, watch_async
    from ims_nb.preflight import preflight, preflight_summary
    from ims_nb.snapshots import compare_snapshots, snapshot, snapshots

#: Public names imported on first use (the client's modules, pandas): `ims-nb --help` and `ims-nb sim` start
#: without pandas, and `ims-nb --help` about as fast as `import httpx` (tests/test_import.py, make bench).
_LAZY = {
    "connect": "ims_nb.client.connection",
    "connect_async": "ims_nb.client.connection",
    "AsyncImsClient": "ims_nb.client",
    "ImsClient": "ims_nb.client",
    "RetryPolicy": "ims_nb.client.retry",
    "BucketInfo": "ims_nb.client.wire",
    "Ledger": "ims_nb.exports.ledger",
    "launch": "ims_nb.exports.launch",
    "plan_exports": "ims_nb.exports.plan",
    "jobs_frame": "ims_nb.exports.history",
    "watch": "ims_nb.exports.watch",
    "watch_async": "ims_nb.exports.watch",
    "preflight": "ims_nb.preflight",
    "preflight_summary": "ims_nb.preflight",
    "snapshot": "ims_nb.snapshots",
    "snapshots": "ims_nb.snapshots",
    "compare_snapshots": "ims_nb.snapshots",
    "coverage": "ims_nb.coverage",
    "coverage_summary": "ims_nb.coverage",
    "coverage_gap_plan": "ims_nb.exports.gap",
    "launch_gap": "ims_nb.exports.gap",
    "connect_estate": "ims_nb.estate",
    "Estate": "ims_nb.estate",
}

__version__ = "0.1.0"

__all__ = [
    "ApiError",
    "AsyncImsClient",
    "AuthError",
    "BucketInfo",
    "ConfigError",
    "Estate",
    "EstateWarning",
    "ImsClient",
    "ImsNbError",
    "InsecureTransportWarning",
    "Ledger",
    "MalformedAnswerError",
    "OutcomeUnknownError",
    "RetryPolicy",
    "ServerError",
    "SimulatorWarning",
    "ThrottledError",
    "TransportError",
    "WaitTimeoutError",
    "__version__",
    "compare_snapshots",
    "connect",
    "connect_async",
    "connect_estate",
    "coverage",
    "coverage_gap_plan",
    "coverage_summary",
    "jobs_frame",
    "launch",
    "launch_gap",
    "plan_exports",
    "preflight",
    "preflight_summary",
    "snapshot",
    "snapshots",
    "watch",
    "watch_async",
]


def __getattr__(name: str) -> Any:
    home = _LAZY.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # once loaded, a plain attribute
    return value


def __dir__() -> list[str]:
    """The public names (loaded or not) and the module's own dunders."""
    return sorted({*__all__, *(name for name in globals() if name.startswith("__"))})


class _Package(ModuleType):
    """``ims_nb`` itself: importing the submodule ``ims_nb.preflight`` keeps ``ims_nb.preflight`` the function."""

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, ModuleType) and _LAZY.get(name) == value.__name__:
            value = getattr(value, name)  # the import system binds a loaded submodule on its parent
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
