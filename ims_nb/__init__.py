"""ims-nb: export private Huawei Cloud IMS images to OBS from Jupyter, safely and in bulk."""

from __future__ import annotations

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
from ims_nb.exports.ledger import Ledger
from ims_nb.exports.plan import launch, plan_exports
from ims_nb.exports.watch import jobs_frame, watch, watch_async
from ims_nb.preflight import preflight, preflight_summary

__version__ = "0.1.0"

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
