"""The wire layer: configuration, signing auth, retries, the IMS/OBS/IAM client and its job polling."""

from __future__ import annotations

from ims_nb.client.aio import AsyncImsClient
from ims_nb.client.connection import connect, connect_async, connect_simulator
from ims_nb.client.sync import ImsClient

__all__ = ["AsyncImsClient", "ImsClient", "connect", "connect_async", "connect_simulator"]
