"""Whose ledger rows are whose: the account identity a client is connected as, and how a row names its owner."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ims_nb.client.config import on_simulator
from ims_nb.exports.flows import Flow, call, drive, drive_async

if TYPE_CHECKING:
    from ims_nb.client.base import ClientSettings
    from ims_nb.client.protocol import AsyncClientLike, ClientLike, ConnectionLike
    from ims_nb.exports.ledger import Ledger

__all__ = ["ELSEWHERE", "UNKNOWN_ACCOUNT", "Identity", "belongs_to", "identity_of", "scoped", "scoped_async"]

#: The start of ``belongs_to`` for a row of another account than the one a ledger is bound to.
ELSEWHERE = "elsewhere"
#: ``belongs_to`` of a row written before the ledger recorded identities (until an account claims it).
UNKNOWN_ACCOUNT = "unknown account (recorded before the ledger kept identities)"


@dataclass(frozen=True)
class Identity:
    """The account a client acts as: where its IMS endpoint is, which project, and who signs (never a secret).

    Two identities own the same rows when their ``endpoint`` and ``project_id`` agree (``principal`` is who
    launched an export: another access key of the same project sees the same rows).
    """

    endpoint: str
    region: str | None = None
    project_id: str | None = None
    principal: str | None = None  # "AK <access key id>" or "user <IAM user name>"
    simulator: bool = False

    def __str__(self) -> str:
        return label(self.endpoint, self.project_id, self.principal, simulator=self.simulator)

    def owns(self, row: Mapping[str, Any]) -> bool:
        """Whether a ledger row belongs to this account (a row without identity belongs to none yet)."""
        return row.get("endpoint") == self.endpoint and (row.get("project_id") or "") == (self.project_id or "")


def label(endpoint: str, project_id: str | None, principal: str | None, *, simulator: bool = False) -> str:
    """``simulator http://127.0.0.1:5000 · project 0a1b… · AK SIMAK…``: an account as people read it."""
    parts = [("simulator " if simulator else "") + endpoint, f"project {project_id or '?'}"]
    return " · ".join(parts + ([principal] if principal else []))


def identity_of(client: ConnectionLike) -> Identity | None:
    """The identity a client is connected as, from its public attributes (no request is sent).

    None for an object that cannot say which endpoint it talks to (a test double): a ledger bound to None
    acts on every row, as before identities were recorded.
    """
    endpoints = getattr(client, "endpoints", None) or getattr(getattr(client, "settings", None), "endpoints", None)
    endpoint = getattr(endpoints, "ims", None)
    if not isinstance(endpoint, str) or not endpoint:
        return None
    region, project_id = getattr(client, "region", None), getattr(client, "project_id", None)
    return Identity(
        endpoint=endpoint.rstrip("/"),
        region=region if isinstance(region, str) else None,
        project_id=project_id if isinstance(project_id, str) else None,
        principal=_principal(getattr(client, "settings", None)),
        simulator=on_simulator(client),
    )


def _principal(settings: ClientSettings | None) -> str | None:
    """``AK <id>`` or ``user <name>``: who signs the requests (the access key id is no secret; the SK is)."""
    credentials, password = getattr(settings, "credentials", None), getattr(settings, "password", None)
    ak, username = getattr(credentials, "ak", None), getattr(password, "username", None)
    if isinstance(ak, str) and ak:
        return f"AK {ak}"
    return f"user {username}" if isinstance(username, str) and username else None


def identity_flow(client: ConnectionLike) -> Flow[Identity | None]:
    """``identity_of`` once the client knows its project (a password login or AK/SK without a project id learns
    it with one cheap call, ``check_credentials``); a flow (``ims_nb.exports.flows``), for sync and async."""
    unknown_project = identity_of(client) is not None and getattr(client, "project_id", None) is None
    if unknown_project and callable(getattr(client, "check_credentials", None)):
        yield from call("check_credentials")
    return identity_of(client)


def scoped(ledger: Ledger, client: ClientLike) -> Ledger:
    """``ledger`` bound to the account ``client`` is connected as (see ``Ledger.bound_to``)."""
    return ledger.bound_to(drive(identity_flow(client), client))


async def scoped_async(ledger: Ledger, client: AsyncClientLike) -> Ledger:
    """``scoped`` with an asynchronous client."""
    return ledger.bound_to(await drive_async(identity_flow(client), client))


def belongs_to(row: Mapping[str, Any], identity: Identity | None = None) -> str:
    """Whose a row is, as ``jobs_frame`` and ``ims-nb jobs`` show it: its account, prefixed ``elsewhere:`` when
    ``identity`` (the account a ledger is bound to) is another one."""
    endpoint = row.get("endpoint")
    owner = label(endpoint, row.get("project_id"), row.get("launched_by")) if endpoint else UNKNOWN_ACCOUNT
    if identity is None or identity.owns(row):
        return owner
    return f"{ELSEWHERE}: {owner}"
