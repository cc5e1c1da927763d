"""Leases: the processes holding ledger rows renew a row of their own (heartbeat), so liveness is known on any host."""

from __future__ import annotations

import logging
import os
import re
import secrets
import socket
import threading
import time
from collections.abc import Iterable
from enum import StrEnum
from types import TracebackType
from typing import TYPE_CHECKING

from sqlalchemy import Connection, delete, select, update

from ims_nb.errors import ConfigError
from ims_nb.exports.tables import leases

if TYPE_CHECKING:
    from ims_nb.exports.ledger import Ledger

log = logging.getLogger("ims_nb")

#: The host name a process records in its leases and rows (default ``socket.gethostname()``): tests run processes
#: as if on different hosts.
ENV_HOST = "IMS_NB_HOST"
#: Seconds a lease lasts without a heartbeat (default ``LEASE_SECONDS``); a heartbeat renews it every third of that.
ENV_LEASE_SECONDS = "IMS_NB_LEASE_SECONDS"
LEASE_SECONDS = 30.0


class Kind(StrEnum):
    """What a lease's holder does with the rows it holds."""

    LAUNCHER = "launcher"  # claims rows and sends their exports (``exports.launch``)
    WATCHER = "watcher"  # polls their jobs (``exports.watch``)


#: A lease holder's id, ``host:pid:<8 hex>``; an owner of the form ``host:pid`` is a row written before leases.
_HOLDER = re.compile(r"(?P<host>.+):(?P<pid>\d+):[0-9a-f]{8}")


def this_host() -> str:
    """The host this process says it runs on: ``$IMS_NB_HOST``, else the machine's host name."""
    return os.environ.get(ENV_HOST) or socket.gethostname()


def lease_seconds() -> float:
    """A lease's time to live: ``$IMS_NB_LEASE_SECONDS``, else ``LEASE_SECONDS``."""
    text = os.environ.get(ENV_LEASE_SECONDS)
    if not text:
        return LEASE_SECONDS
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0.0
    if not seconds > 0:
        raise ConfigError(f"${ENV_LEASE_SECONDS} must be a number of seconds above 0, not {text!r}")
    return seconds


def current_owner() -> str:
    """A process's owner id without a lease (``host:pid``): rows claimed outside a launch record it."""
    return f"{this_host()}:{os.getpid()}"


def is_holder(owner: str | None) -> bool:
    """Whether a row's owner is a lease holder (``host:pid:<8 hex>``), not an old-style ``host:pid``."""
    return bool(owner) and _HOLDER.fullmatch(owner or "") is not None


def owner_alive(owner: str | None) -> bool:
    """Whether the process of an old-style owner (``host:pid``) still runs (only knowable on this host)."""
    if not owner or ":" not in owner:
        return False
    host, _, pid = owner.rpartition(":")
    if host != this_host() or not pid.isdigit():
        return False
    if int(pid) == os.getpid():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def may_run(holder: str) -> bool:
    """False when a holder's process is known gone: it ran on this host and its pid is no more (on another host,
    only its lease can tell)."""
    found = _HOLDER.fullmatch(holder)
    return found is None or found["host"] != this_host() or owner_alive(f"{found['host']}:{found['pid']}")


def live_holders(db: Connection, owners: Iterable[str | None]) -> set[str]:
    """The owners among ``owners`` that are alive: a holder whose lease has not expired (on this host, its process
    must also still run: a SIGKILLed one is gone at once), or an old-style owner whose process runs on this host
    (``owner_alive``)."""
    named = {owner for owner in owners if owner}
    held = {owner for owner in named if is_holder(owner)}
    alive = {owner for owner in named - held if owner_alive(owner)}
    if held:
        query = select(leases.c.holder).where(leases.c.holder.in_(sorted(held)), leases.c.expires_at > time.time())
        alive |= {holder for holder in db.execute(query).scalars() if may_run(holder)}
    return alive


class Lease:
    """A process's hold on ledger rows (a launcher's claims, a watcher's jobs), renewed while the process lives.

    ``start`` writes its ``leases`` row and starts a daemon heartbeat that moves ``expires_at`` to now + ``ttl``
    every ``ttl / 3``; ``release`` stops it and deletes the row. A process that dies stops renewing: once its lease
    expires, its rows are known orphaned on every host. A heartbeat that fails (the database briefly down) logs and
    tries again at the next beat. Use it as a context manager (``with Lease(ledger, "launcher") as lease:``).

    Args:
        ledger: the ledger whose rows the process holds.
        kind: what the process is (``launcher``, ``watcher``).
        ttl: seconds the lease lasts without a heartbeat (default ``lease_seconds()``).
        user: who runs the process, when known.
    """

    def __init__(self, ledger: Ledger, kind: str, *, ttl: float | None = None, user: str | None = None) -> None:
        self.ledger, self.kind, self.user = ledger, str(kind), user
        self.ttl = lease_seconds() if ttl is None else float(ttl)
        if not self.ttl > 0:
            raise ConfigError(f"a lease lasts more than 0 seconds, not {ttl}")
        self.holder = f"{this_host()}:{os.getpid()}:{secrets.token_hex(4)}"
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"Lease({self.holder!r}, kind={self.kind!r}, ttl={self.ttl:g})"

    def start(self) -> Lease:
        """Write the lease (expired ones of any holder are swept) and start its heartbeat."""
        now = time.time()
        with self.ledger.transaction() as db:
            db.execute(delete(leases).where(leases.c.expires_at < now))
            self._insert(db, now)
        self._stop.clear()
        self._beat = threading.Thread(target=self._heartbeat, name=f"ims-nb-lease-{self.kind}", daemon=True)
        self._beat.start()
        return self

    def _insert(self, db: Connection, now: float) -> None:
        db.execute(leases.insert().values(
            holder=self.holder, kind=self.kind, user=self.user, host=this_host(), pid=os.getpid(), started_at=now,
            renewed_at=now, expires_at=now + self.ttl))  # fmt: skip

    def renew(self) -> None:
        """Move the lease's expiry to now + ``ttl``; a lease found gone (it lapsed and was swept) is written again."""
        now = time.time()
        with self.ledger.transaction() as db:
            renewed = db.execute(update(leases).where(leases.c.holder == self.holder)
                                 .values(renewed_at=now, expires_at=now + self.ttl)).rowcount  # fmt: skip
            if not renewed:
                log.warning("lease %s had lapsed (its rows may have been reconciled meanwhile); renewed", self.holder)
                self._insert(db, now)

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            try:
                self.renew()
            except Exception as exc:  # the database briefly down: the next beat tries again
                log.warning("lease %s: heartbeat failed (%s); trying again in %.3g s", self.holder,
                            self.ledger._reason(exc), self.ttl / 3)  # fmt: skip

    def release(self) -> None:
        """Stop the heartbeat and delete the lease (if the database is down, it expires by itself)."""
        self._stop.set()
        if self._beat is not None:
            self._beat.join(timeout=self.ttl)
            self._beat = None
        try:
            with self.ledger.transaction() as db:
                db.execute(delete(leases).where(leases.c.holder == self.holder))
        except Exception as exc:
            log.warning("lease %s: not released (%s); it expires by itself", self.holder, self.ledger._reason(exc))

    def __enter__(self) -> Lease:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.release()
