"""Whose ledger rows are whose: the account a client is connected as, who launches (IAM user, host), row owners."""

from __future__ import annotations

import logging
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from ims_nb.client.config import on_simulator
from ims_nb.errors import ApiError, TransportError
from ims_nb.exports.flows import Flow, call, drive, drive_async
from ims_nb.exports.leases import this_host

if TYPE_CHECKING:
    from ims_nb.client.base import ClientSettings
    from ims_nb.client.protocol import AsyncClientLike, ClientLike, ConnectionLike
    from ims_nb.exports.ledger import Ledger

__all__ = ["ELSEWHERE", "UNKNOWN_ACCOUNT", "Identity", "belongs_to", "identity_of", "scoped", "scoped_async",
           "user_flow"]  # fmt: skip

log = logging.getLogger(__name__)

#: The start of ``belongs_to`` for a row of another account than the one a ledger is bound to.
ELSEWHERE = "elsewhere"
#: ``belongs_to`` of a row written before the ledger recorded identities (until an account claims it).
UNKNOWN_ACCOUNT = "unknown account (recorded before the ledger kept identities)"


@dataclass(frozen=True)
class Identity:
    """The account a client acts as: where its IMS endpoint is, which project, and who signs (never a secret).

    Two identities own the same rows when their ``endpoint`` and ``project_id`` agree (``principal``, ``user``
    and ``host`` say who launched an export where: another access key of the same project sees the same rows).
    """

    endpoint: str
    region: str | None = None
    project_id: str | None = None
    principal: str | None = None  # "AK <access key id>" or "user <IAM user name>"
    simulator: bool = False
    user: str | None = None  # the IAM user name (or id, when IAM refuses its name); None: not known
    host: str | None = None  # the machine this process runs on (``leases.this_host``: $IMS_NB_HOST or its name)

    def __str__(self) -> str:
        return label(self.endpoint, self.project_id, self.principal, simulator=self.simulator)

    @property
    def who(self) -> str | None:
        """Who acts, as a lease records it: the IAM user when known, else who signs (``AK <id>``)."""
        return self.user or self.principal

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
        user=_signer(getattr(client, "settings", None))[1],  # a password login names its user; an AK needs IAM
        host=this_host(),
    )


def _signer(settings: ClientSettings | None) -> tuple[str | None, str | None]:
    """The access key id and the login user name of a client's settings (either may be None)."""
    credentials, password = getattr(settings, "credentials", None), getattr(settings, "password", None)
    ak, username = getattr(credentials, "ak", None), getattr(password, "username", None)
    return (ak if isinstance(ak, str) and ak else None), (username if isinstance(username, str) and username else None)


def _principal(settings: ClientSettings | None) -> str | None:
    """``AK <id>`` or ``user <name>``: who signs the requests (the access key id is no secret; the SK is)."""
    ak, username = _signer(settings)
    if ak is not None:
        return f"AK {ak}"
    return f"user {username}" if username is not None else None


def identity_flow(client: ConnectionLike, *, who: bool = False) -> Flow[Identity | None]:
    """``identity_of`` once the client knows its project (a password login or AK/SK without a project id learns
    it with one cheap call, ``check_credentials``); a flow (``ims_nb.exports.flows``), for sync and async.

    Args:
        who: also learn the IAM user behind an access key (``user_flow``: what a launch records).
    """
    identity = identity_of(client)
    if identity is not None and getattr(client, "project_id", None) is None and _can(client, "check_credentials"):
        yield from call("check_credentials")
        identity = identity_of(client)
    if who and identity is not None and identity.user is None:
        identity = replace(identity, user=(yield from user_flow(client)))
    return identity


#: The IAM user found behind each client's access key (one lookup per client; None: it could not be found).
_USERS: weakref.WeakKeyDictionary[Any, str | None] = weakref.WeakKeyDictionary()


def user_flow(client: ConnectionLike) -> Flow[str | None]:
    """The IAM user name behind a client's access key, looked up once per client (a flow).

    ``GET /v3.0/OS-CREDENTIAL/credentials/{ak}`` names the key's user id and ``GET /v3/users/{id}`` its name;
    when IAM refuses the second (403: showing users is an administrator's right), the user id stands in. No
    answer (refused, unknown key, outage) leaves the user unknown (None): a launch goes on, its rows say ``AK
    <id>`` only. A refusal of the credentials themselves is ``check_credentials``'s to raise, before any lookup.
    """
    ak = _signer(getattr(client, "settings", None))[0]
    if ak is None or not _can(client, "iam_read"):
        return None
    if client in _USERS:
        return _USERS[client]
    if _can(client, "check_credentials"):
        yield from call("check_credentials")
    user = yield from _lookup(ak)
    _USERS[client] = user
    return user


def _lookup(ak: str) -> Flow[str | None]:
    """The two IAM reads of ``user_flow``."""
    try:
        found = yield from call("iam_read", f"/v3.0/OS-CREDENTIAL/credentials/{quote(ak, safe='')}")
        user_id = found["credential"]["user_id"]
    except (ApiError, TransportError, KeyError, TypeError) as exc:
        log.info("the IAM user behind AK %s is not known: %s", ak, exc)
        return None
    if not isinstance(user_id, str) or not user_id:
        return None
    try:
        shown = yield from call("iam_read", f"/v3/users/{quote(user_id, safe='')}")
        name = shown["user"]["name"]
    except (ApiError, TransportError, KeyError, TypeError) as exc:  # 403: IAM shows users to administrators
        log.info("the name of IAM user %s is not known: %s", user_id, exc)
        return user_id
    return name if isinstance(name, str) and name else user_id


def _can(client: object, method: str) -> bool:
    return callable(getattr(client, method, None))


def scoped(ledger: Ledger, client: ClientLike, *, who: bool = False) -> Ledger:
    """``ledger`` bound to the account ``client`` is connected as (see ``Ledger.bound_to``); ``who``: with the
    IAM user behind its access key, as a launch records it (``identity_flow``)."""
    return ledger.bound_to(drive(identity_flow(client, who=who), client))


async def scoped_async(ledger: Ledger, client: AsyncClientLike, *, who: bool = False) -> Ledger:
    """``scoped`` with an asynchronous client."""
    return ledger.bound_to(await drive_async(identity_flow(client, who=who), client))


def belongs_to(row: Mapping[str, Any], identity: Identity | None = None) -> str:
    """Whose a row is, as ``jobs_frame`` and ``ims-nb jobs`` show it: its account, prefixed ``elsewhere:`` when
    ``identity`` (the account a ledger is bound to) is another one."""
    endpoint = row.get("endpoint")
    owner = label(endpoint, row.get("project_id"), row.get("launched_by")) if endpoint else UNKNOWN_ACCOUNT
    if identity is None or identity.owns(row):
        return owner
    return f"{ELSEWHERE}: {owner}"
