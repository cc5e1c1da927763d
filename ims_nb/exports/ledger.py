"""The export ledger: one SQLite file (WAL) that records every launch before it is sent and all that follows.

Row states::

    submitting ──> submitted ──> running ──> succeeded ──> verified
        │              │            │            └──────> missing   (SUCCESS, but no object in the bucket)
        │              └────────────┴──────────> failed             (FAIL, with error code and reason)
        ├──> unknown   (the POST was sent and its answer lost: reconciled before anything is resubmitted)
        └──> refused   (the service answered with an IMG/APIGW error: nothing was started)
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd  # type: ignore[import-untyped, unused-ignore]
from sqlalchemy import Connection, String, func, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite

from ims_nb.errors import ConfigError
from ims_nb.exports import binding, engines, reconnect
from ims_nb.exports.decisions import decide_rows, verdict
from ims_nb.exports.identity import Identity
from ims_nb.exports.leases import current_owner, live_holders
from ims_nb.exports.leases import owner_alive as owner_alive  # where rows' old-style owners were judged before
from ims_nb.exports.locations import ENV_LEDGER as ENV_LEDGER  # where a ledger lives: long imported from here
from ims_nb.exports.locations import ENV_SIM_LEDGER as ENV_SIM_LEDGER
from ims_nb.exports.locations import default_location as default_location
from ims_nb.exports.locations import default_path as default_path
from ims_nb.exports.locations import location_for as location_for
from ims_nb.exports.locations import simulator_path as simulator_path
from ims_nb.exports.schema import COLUMNS, UPDATABLE
from ims_nb.exports.tables import exports
from ims_nb.vocab import LIVE, Action, State, Target

if TYPE_CHECKING:
    from ims_nb.client.protocol import ConnectionLike


def ledger_for(client: ConnectionLike, path: str | Path | None = None) -> Ledger:
    """The ledger for a client's exports, bound to its account (``Ledger.bound_to``): ``path`` when given, else
    ``default_location()`` for a real account and ``simulator_path`` for a simulator (the connection knows which)."""
    from ims_nb.exports.identity import identity_of

    return Ledger(path if path is not None else location_for(client)).bound_to(identity_of(client))


class Ledger:
    """The durable record of every export launch (safe for several processes on one database).

    Args:
        path: the SQLite file (its folder is created), or a database URL: ``sqlite:///PATH`` or
            ``postgresql://USER@HOST/DB`` (psycopg 3, the ``postgres`` extra); default ``default_location()``.
    """

    def __init__(self, path: str | Path | None = None) -> None:
        url = engines.ledger_url(path if path is not None else default_location())
        #: The SQLite file, or None for a database server; ``url`` says where either is, without a password.
        self.path = engines.sqlite_path(url)
        self.url = engines.shown(url)
        self._password = url.password
        try:
            if self.path is not None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            self._engine = engines.open_engine(url)
            self._lock = threading.RLock()  # this process's writers queue here, not on the database's lock
            self._closed = threading.Event()  # shared by the views of bound_to, like the engine
            engines.upgrade(self._engine, self.where)
        except engines.OPEN_ERRORS as exc:
            raise ConfigError(f"cannot open the ledger {self.where}: {self._reason(exc)}") from None
        self.identity: Identity | None = None  # see bound_to

    @property
    def where(self) -> str:
        """Where the ledger is, as its errors and logs name it: the file, or the URL without its password."""
        return str(self.path) if self.path is not None else self.url

    def _reason(self, exc: BaseException) -> str:
        text = engines.reason(exc)
        return text.replace(str(self._password), "***") if self._password else text

    def __repr__(self) -> str:
        return f"Ledger({self.where!r})"

    def schema_version(self) -> int:
        """The ledger's schema version (SQLite's ``PRAGMA user_version``; a server's ``ims_nb_schema`` row)."""
        with self._connect() as connection:
            return engines.read_version(connection)

    def close(self) -> None:
        """Close the ledger's connections; using it (or a view of ``bound_to``) afterwards is an error."""
        with self._lock:
            self._closed.set()
            self._engine.dispose()

    def _connect(self) -> Connection:
        if self._closed.is_set():
            raise sqlite3.ProgrammingError(f"the ledger {self.where} is closed")  # the DB-API's error, as before
        return self._engine.connect()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def transaction(self) -> AbstractContextManager[Connection]:
        """One write transaction, for the ledger's companions (``exports.leases``): committed when the block ends."""
        return self._transaction()

    def holders_alive(self, owners: Iterable[str | None]) -> set[str]:
        """The rows' owners that are alive: a lease holder whose lease has not expired, on whatever host, or an
        old-style ``host:pid`` owner whose process runs on this host (``exports.leases.live_holders``)."""
        with self._connect() as connection:
            return live_holders(connection, owners)

    def holder_alive(self, owner: str | None) -> bool:
        return owner is not None and owner in self.holders_alive([owner])  # one row's (``holders_alive``)

    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        """One write transaction that takes the database's write lock at once (other processes wait); on a server,
        one that rides out a lost connection (``reconnect``: a SQLite file has no server to lose, nothing to replay)."""
        with self._lock, self._writer() as db:
            yield db

    def _writer(self) -> AbstractContextManager[Connection]:
        if self.path is not None:
            return engines.writing(self._connect())
        return reconnect.reconnecting(self._connect, reconnect.Patience(self.where, self._reason))

    def _read(self, statement: Any) -> list[dict[str, Any]]:
        """The rows a select returns, as readers see them (``_row_dict``); read again while the server is away."""
        found = reconnect.read(self._connect, statement, reconnect.Patience(self.where, self._reason))
        return [_row_dict(row) for row in found]

    def claim(
        self,
        *,
        image_id: str,
        target: Target,
        image_name: str | None,
        file_format: str | None,
        quick: bool,
        size_bytes: int | None,
        region: str | None,
        project_id: str | None = None,
        force: bool = False,
        owner: str | None = None,
    ) -> int | None:
        """Write a ``submitting`` row before the POST, if ``decide`` says launch (``force``: even if done, or live
        in the hands of a holder that is gone: that row's claim is superseded, its note says so).

        Returns the new row id, or None when the ledger's rows of the image say otherwise, or another process holds
        its live claim. The decision and the insert are one transaction, and the insert cannot make a second live
        claim of the image in the account (the unique ``claim_key``), on any engine, from any host. ``owner`` is
        the claimer's lease holder (``exports.leases.Lease``), default this process (``current_owner``).
        """
        now = time.time()
        key = binding.claim_key(self.identity, image_id, project_id)
        with self._transaction() as db:
            _serialise_claims(db, image_id)
            mine = select(exports).where(exports.c.image_id == image_id, *binding.scope(self.identity))
            found = [_row_dict(row) for row in db.execute(mine.order_by(exports.c.row_id)).mappings()]
            if verdict(found, image_id, target, force=force)[0] is not Action.LAUNCH:
                return None
            if force and not _supersede(db, [r for r in found if r["claim_key"] == key]):
                return None  # its live claim's holder is alive: never two live exports of an image
            inserted = db.execute(_insert_new(db).values(
                image_id=image_id, image_name=image_name, bucket=target.bucket, object_key=target.key,
                file_format=file_format, quick=int(quick), size_bytes=size_bytes, region=region,
                project_id=project_id, state=State.SUBMITTING.value, owner=owner or current_owner(), created_at=now,
                updated_at=now, claim_key=key).on_conflict_do_nothing().returning(exports.c.row_id))  # fmt: skip
            row_id = inserted.scalar_one_or_none()
            if row_id is None:
                return None  # another process holds the image's live claim (it committed first)
            binding.stamp(db, int(row_id), self.identity)
            return int(row_id)

    def decide(self, plan: pd.DataFrame, *, force: bool = False) -> pd.DataFrame:
        """What a launch of ``plan`` would do with each row, and why: one row per plan row (same index).

        ``action`` is launch, skip (live or done in the ledger) or refused (by preflight: the plan's
        ``exportable`` and ``blocking``; by the service before, or the image being exported elsewhere);
        ``row_id``, ``state`` and ``job_id`` are those of the ledger row that decided a skip or refusal.
        """
        return decide_rows(plan, self.rows(), force=force)

    def update(self, row_id: int, **fields: Any) -> None:
        """Change a row's fields (state, job_id, status, progress, times, errors, note)."""
        unknown = set(fields) - UPDATABLE
        if unknown:
            raise ConfigError(f"cannot update ledger field(s) {', '.join(sorted(unknown))}")
        fields = {k: (v.value if isinstance(v, StrEnum) else v) for k, v in fields.items()}
        fields["updated_at"] = time.time()
        if "state" in fields and fields["state"] not in LIVE:
            fields["claim_key"] = None  # the row no longer holds the image's live claim: a new launch may take it
        with self._transaction() as db:
            changed = db.execute(update(exports).where(exports.c.row_id == row_id, *binding.scope(self.identity))
                                 .values(**fields)).rowcount  # fmt: skip
        if not changed:
            binding.refuse_foreign(self, row_id)

    def row(self, row_id: int) -> dict[str, Any]:
        found = self._read(select(exports).where(exports.c.row_id == row_id))
        if not found:
            raise ConfigError(f"no ledger row {row_id}")
        return found[0]

    def rows(
        self, states: frozenset[State] | set[State] | None = None, *, every_account: bool = False
    ) -> list[dict[str, Any]]:
        """Every row (or those in ``states``), oldest first; on a bound ledger only its account's rows, unless
        ``every_account``."""
        query = select(exports).order_by(exports.c.row_id)
        if states:
            query = query.where(exports.c.state.in_(sorted(s.value for s in states)))
        if not every_account:
            query = query.where(*binding.scope(self.identity))
        return self._read(query)

    def frame(self) -> pd.DataFrame:
        """Every row as a DataFrame (the raw ledger; ``ims_nb.jobs_frame`` adds durations and throughput)."""
        rows = self.rows()
        return pd.DataFrame(rows, columns=list(COLUMNS))

    def bound_to(self, identity: Identity | None) -> Ledger:
        """This ledger as one account sees it (``exports.binding.bind``); ``bound_to(None)``: the whole ledger."""
        return binding.bind(self, identity)

    def disown(self, row_id: int, reason: str) -> None:
        """Give a claimed row (``bound_to``) back: its account is unknown again, and its note says why."""
        binding.disown(self, row_id, reason)


def _serialise_claims(db: Connection, image_id: str) -> None:
    """Make a second claimer of the image wait for this transaction: SQLite's ``BEGIN IMMEDIATE`` has done so for
    the whole file; on PostgreSQL a transaction-scoped advisory lock on the image does (held until commit). The
    unique ``claim_key`` is the guarantee; the lock keeps atomic what it does not reach (rows older than the key,
    another account's view, a forced claim superseding a dead holder's)."""
    if db.dialect.name == engines.POSTGRESQL:
        db.execute(select(func.pg_advisory_xact_lock(func.hashtext(literal(image_id, String)))))


def _supersede(db: Connection, held: list[dict[str, Any]]) -> bool:
    """Clear the live claim of rows whose holder is gone, so a forced claim may take it; False (nothing changed)
    when a holder is alive."""
    owners = [row["owner"] for row in held]
    if live_holders(db, owners):
        return False
    for row in held:
        db.execute(update(exports).where(exports.c.row_id == row["row_id"], exports.c.claim_key == row["claim_key"])
                   .values(claim_key=None, note=binding.noted(f"superseded by a forced launch: its holder "
                                                       f"{row['owner']} is gone")))  # fmt: skip
    return True


def _insert_new(db: Connection) -> postgresql.Insert | sqlite.Insert:
    """An insert into the exports that may do nothing on a conflict (a second live claim), in the engine's dialect."""
    return postgresql.insert(exports) if db.dialect.name == engines.POSTGRESQL else sqlite.insert(exports)


def _row_dict(row: Mapping[Any, Any]) -> dict[str, Any]:
    """A row as readers see it: the table's fields in ``COLUMNS`` order, ``bucket_url`` derived."""
    found = {str(name): value for name, value in row.items()}
    found["bucket_url"] = Target(found["bucket"], found["object_key"]).bucket_url
    return {**{name: found[name] for name in COLUMNS if name in found}, **found}
