"""The wire layer: configuration, signing auth, retries, the IMS/OBS/IAM client and its job polling."""

from __future__ import annotations

from ims_nb.client.connection import connect, connect_async
from ims_nb.client.drivers import AsyncImsClient, ImsClient

__all__ = ["AsyncImsClient", "ImsClient", "connect", "connect_async"]
