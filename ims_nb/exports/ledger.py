"""The export ledger: one SQLite file (WAL) that records every launch before it is sent and all that follows.

Row states::

    submitting ──> submitted ──> running ──> succeeded ──> verified
        │              │            │            └──────> missing   (SUCCESS, but no object in the bucket)
        │              └────────────┴──────────> failed             (FAIL, with error code and reason)
        ├──> unknown   (the POST was sent and its answer lost: reconciled before anything is resubmitted)
        └──> refused   (the service answered with an IMG/APIGW error: nothing was started)
"""

from __future__ import annotations

import copy
import logging
import os
import socket
import sqlite3
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd  # type: ignore[import-untyped, unused-ignore]

from ims_nb.client.config import on_simulator
from ims_nb.errors import ConfigError
from ims_nb.exports.decisions import decide_rows, verdict
from ims_nb.exports.identity import Identity
from ims_nb.exports.schema import COLUMNS, MIGRATIONS, SCHEMA, SCHEMA_BASE, SCHEMA_VERSION, UPDATABLE
from ims_nb.vocab import Action, State, Target

if TYPE_CHECKING:
    from ims_nb.client.protocol import ConnectionLike

log = logging.getLogger("ims_nb")

#: Set by ``ims-nb lab``: the ledger of the exports sent to its simulator.
ENV_SIM_LEDGER = "IMS_NB_SIM_LEDGER"
ENV_LEDGER = "IMS_NB_LEDGER"


def current_owner() -> str:
    """Who writes a ``submitting`` row: a row whose owner process is gone was cut off mid-POST."""
    return f"{socket.gethostname()}:{os.getpid()}"


def owner_alive(owner: str | None) -> bool:
    """Whether the process that wrote a row still runs (only knowable on this host)."""
    if not owner or ":" not in owner:
        return False
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
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


def default_path() -> Path:
    """``$IMS_NB_LEDGER``, else ``ims-nb/ledger.sqlite`` under the user's data directory."""
    if os.environ.get(ENV_LEDGER):
        return Path(os.environ[ENV_LEDGER])
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "ims-nb" / "ledger.sqlite"


def simulator_path(endpoint: str, *, shared: bool = False) -> Path:
    """A ledger for exports to a simulator: ``$IMS_NB_SIM_LEDGER`` (set by ``ims-nb lab``), else a file in the
    temporary folder for this process and simulator (its state dies with it, so does this ledger), or with
    ``shared`` for the simulator alone (one that runs apart, used by several processes)."""
    if os.environ.get(ENV_SIM_LEDGER):
        return Path(os.environ[ENV_SIM_LEDGER])
    port = endpoint.rsplit(":", 1)[-1].strip("/")
    name = f"ims-nb-sim-{port}" if shared else f"ims-nb-sim-{os.getpid()}-{port}"
    return Path(tempfile.gettempdir()) / f"{name}.sqlite"


def ledger_for(client: ConnectionLike, path: str | Path | None = None) -> Ledger:
    """The ledger for a client's exports, bound to its account (``Ledger.bound_to``): ``path`` when given, else
    ``default_path()`` for a real account and ``simulator_path`` for a simulator (the connection knows which)."""
    from ims_nb.exports.identity import identity_of

    return Ledger(path if path is not None else path_for(client)).bound_to(identity_of(client))


def path_for(client: ConnectionLike) -> Path:
    """Where ``ledger_for`` keeps a client's exports: a simulator's never go to the real default ledger.

    A simulator this process runs gets a file of this process; one running apart (``ims-nb sim``) a file of its
    endpoint, shared by the processes that use it (``ims-nb export --sim`` then ``ims-nb jobs --watch --sim``).
    """
    if not on_simulator(client):
        return default_path()
    embedded = getattr(client.settings, "simulator", None) is not None
    return simulator_path(client.settings.endpoints.ims, shared=not embedded)


class Ledger:
    """The durable record of every export launch (safe for several processes on one file).

    Args:
        path: the SQLite file (default: ``default_path()``); its folder is created.
    """

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_path()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")  # WAL: durable across process crashes
            self._lock = threading.RLock()
            self._upgrade()
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(f"cannot open the ledger {self.path}: {exc}") from None
        self.identity: Identity | None = None  # see bound_to

    def _upgrade(self) -> None:
        """Create the table in a new file, or migrate an older file in place (``MIGRATIONS``), in one transaction."""
        with self._transaction() as db:
            version = int(db.execute("PRAGMA user_version").fetchone()[0])
            if version > SCHEMA_VERSION:
                raise ConfigError(f"the ledger {self.path} has schema version {version}; this ims-nb knows up to "
                                  f"{SCHEMA_VERSION}: upgrade ims-nb")  # fmt: skip
            if db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'exports'").fetchone() is None:
                for statement in filter(str.strip, SCHEMA.split(";")):
                    db.execute(statement)
                version = SCHEMA_BASE
            for step in MIGRATIONS[version:]:
                step(db)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def __repr__(self) -> str:
        return f"Ledger({str(self.path)!r})"

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction that takes the file's write lock at once (other processes wait)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

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
    ) -> int | None:
        """Write a ``submitting`` row before the POST, if ``decide`` says launch (``force``: even if live or done).

        Returns the new row id, or None when the ledger's rows of the image say otherwise. The decision and the
        insert are one transaction, so two processes cannot both claim one export.
        """
        now = time.time()
        scope, scope_args = self._scope()  # only the bound account's rows decide
        with self._transaction() as db:
            found = db.execute(f"SELECT * FROM exports WHERE image_id = ?{scope} ORDER BY row_id",  # noqa: S608
                               (image_id, *scope_args))  # fmt: skip
            if verdict([_row_dict(r) for r in found], image_id, target, force=force)[0] is not Action.LAUNCH:
                return None
            cursor = db.execute(
                "INSERT INTO exports (image_id, image_name, bucket, object_key, file_format, quick, size_bytes, "
                "region, project_id, state, owner, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (image_id, image_name, target.bucket, target.key, file_format, int(quick), size_bytes, region,
                 project_id, State.SUBMITTING.value, current_owner(), now, now),
            )  # fmt: skip
            self._stamp(db, int(cursor.lastrowid or 0))
            return int(cursor.lastrowid or 0)

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
        assignments = ", ".join(f"{name} = ?" for name in fields)
        scope, scope_args = self._scope()
        with self._transaction() as db:
            changed = db.execute(f"UPDATE exports SET {assignments} WHERE row_id = ?{scope}",  # noqa: S608
                                 (*fields.values(), row_id, *scope_args)).rowcount  # fmt: skip
        if not changed and self.identity is not None:
            self._refuse_foreign(row_id)

    def row(self, row_id: int) -> dict[str, Any]:
        with self._lock:
            found = self._db.execute("SELECT * FROM exports WHERE row_id = ?", (row_id,)).fetchone()
        if found is None:
            raise ConfigError(f"no ledger row {row_id}")
        return _row_dict(found)

    def rows(
        self, states: frozenset[State] | set[State] | None = None, *, every_account: bool = False
    ) -> list[dict[str, Any]]:
        """Every row (or those in ``states``), oldest first; on a bound ledger only its account's rows, unless
        ``every_account``."""
        query, args = "SELECT * FROM exports WHERE 1 = 1", tuple[str, ...]()
        if states:
            query += f" AND state IN ({','.join('?' * len(states))})"
            args = tuple(sorted(s.value for s in states))
        if not every_account:
            scope, scope_args = self._scope()
            query, args = query + scope, (*args, *scope_args)
        with self._lock:
            return [_row_dict(r) for r in self._db.execute(query + " ORDER BY row_id", args)]

    def frame(self) -> pd.DataFrame:
        """Every row as a DataFrame (the raw ledger; ``ims_nb.jobs_frame`` adds durations and throughput)."""
        rows = self.rows()
        return pd.DataFrame(rows, columns=list(COLUMNS))

    # --- identity: whose rows are whose (issue 12, item 8) ------------------------------------------------------

    def bound_to(self, identity: Identity | None) -> Ledger:
        """This ledger as one account sees it (the same file and connection; closing either closes both).

        ``rows`` lists only the account's rows (``rows(every_account=True)`` all), ``claim`` stamps new rows with
        the account and blocks only on its rows, and ``update`` refuses another account's row. Rows written
        before the ledger kept identities are claimed, with a note, by the first real account bound in their
        region (a simulator claims none). ``bound_to(None)`` is the whole ledger, unbound.
        """
        if identity == self.identity:
            return self  # already this account's view: its old rows were claimed when it was made
        view = copy.copy(self)
        view.identity = identity
        if identity is not None and not identity.simulator:
            view._adopt()
        return view

    def _scope(self) -> tuple[str, tuple[str, ...]]:
        """The SQL condition (`` AND ...``) and arguments that keep a query to the bound account's rows."""
        if self.identity is None:
            return "", ()
        who = self.identity
        return " AND endpoint = ? AND COALESCE(project_id, '') = ?", (who.endpoint, who.project_id or "")

    def _stamp(self, db: sqlite3.Connection, row_id: int) -> None:
        """A claimed row records the account that launched it (endpoint, project, access key id or user)."""
        if self.identity is not None:
            who = self.identity
            db.execute("UPDATE exports SET endpoint = ?, project_id = ?, launched_by = ?, "
                       "region = COALESCE(region, ?) WHERE row_id = ?",
                       (who.endpoint, who.project_id, who.principal, who.region, row_id))  # fmt: skip

    def _refuse_foreign(self, row_id: int) -> None:
        row = self.row(row_id)
        from ims_nb.exports.identity import belongs_to

        raise ConfigError(f"ledger row {row_id} belongs to another account ({belongs_to(row)}); it was not changed, "
                          f"as {self.identity} cannot know its job")  # fmt: skip

    def _adopt(self) -> None:
        """Rows without identity in this account's region become its rows, each with a note that says so.

        Rows in doubt (cut off mid-POST, or whose answer was lost) are left alone: reconciling them may send the
        export again, and an old row may have been a simulator's, so only rows the service can vouch for (a job
        id it will answer for, or a final state) are claimed; the rest stay with the unknown account.
        """
        assert self.identity is not None
        note = f"claimed by {self.identity}: recorded before the ledger kept identities"
        with self._transaction() as db:
            claimed = db.execute(
                "UPDATE exports SET endpoint = ?, project_id = ?, adopted_at = ?, "
                "note = ? || COALESCE('; ' || note, '') WHERE endpoint IS NULL AND region = ? "
                "AND state NOT IN (?, ?)",
                (
                    self.identity.endpoint,
                    self.identity.project_id,
                    time.time(),
                    note,
                    self.identity.region,
                    State.SUBMITTING.value,
                    State.UNKNOWN.value,
                ),
            ).rowcount
        if claimed:
            log.info("the ledger %s: %d row(s) without identity claimed by %s", self.path, claimed, self.identity)

    def disown(self, row_id: int, reason: str) -> None:
        """Give a claimed row (``bound_to``) back: its account is unknown again, and its note says why."""
        with self._transaction() as db:
            db.execute(
                "UPDATE exports SET endpoint = NULL, project_id = NULL, adopted_at = NULL, note = ?, updated_at = ? "
                "WHERE row_id = ? AND adopted_at IS NOT NULL",
                (reason, time.time(), row_id),
            )


def _row_dict(row: sqlite3.Row) -> dict[str, Any]:
    """A row as readers see it: the table's fields in ``COLUMNS`` order, ``bucket_url`` derived."""
    found = dict(row)
    found["bucket_url"] = Target(found["bucket"], found["object_key"]).bucket_url
    return {**{name: found[name] for name in COLUMNS if name in found}, **found}
