"""ims-nb: export private Huawei Cloud IMS images to OBS from Jupyter, safely and in bulk."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ims_nb.client import AsyncImsClient, ImsClient
from ims_nb.client.connection import connect, connect_async
from ims_nb.client.retry import RetryPolicy
from ims_nb.client.wire import BucketInfo
from ims_nb.errors import (
    ApiError,
    AuthError,
    ConfigError,
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
    from ims_nb.exports.history import jobs_frame
    from ims_nb.exports.ledger import Ledger
    from ims_nb.exports.plan import launch, plan_exports
    from ims_nb.exports.watch import watch, watch_async
    from ims_nb.preflight import preflight, preflight_summary

__version__ = "0.1.0"

#: The public names that need pandas, and their modules: loaded on first use, so that the ``ims-nb`` command
#: (whose package this is) starts without pandas.
_LAZY = {
    "Ledger": "ims_nb.exports.ledger",
    "launch": "ims_nb.exports.plan",
    "plan_exports": "ims_nb.exports.plan",
    "jobs_frame": "ims_nb.exports.history",
    "watch": "ims_nb.exports.watch",
    "watch_async": "ims_nb.exports.watch",
    "preflight": "ims_nb.preflight",
    "preflight_summary": "ims_nb.preflight",
}

__all__ = [
    "ApiError",
    "AsyncImsClient",
    "AuthError",
    "BucketInfo",
    "ConfigError",
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
    "connect",
    "connect_async",
    "jobs_frame",
    "launch",
    "plan_exports",
    "preflight",
    "preflight_summary",
    "watch",
    "watch_async",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ims_nb' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
