"""A ledger as one account sees it (``Ledger.bound_to``): its rows' scope, its claims' stamp, old rows it adopts."""

from __future__ import annotations

import copy
import logging
import time
from typing import TYPE_CHECKING

from sqlalchemy import ColumnElement, Connection, String, func, literal, update

from ims_nb.errors import ConfigError
from ims_nb.exports.identity import belongs_to
from ims_nb.exports.tables import exports
from ims_nb.vocab import State

if TYPE_CHECKING:
    from ims_nb.exports.identity import Identity
    from ims_nb.exports.ledger import Ledger

log = logging.getLogger("ims_nb")


def bind(ledger: Ledger, identity: Identity | None) -> Ledger:
    """``ledger`` as one account sees it (the same database and engine; closing either closes both).

    ``rows`` lists only the account's rows (``rows(every_account=True)`` all), ``claim`` stamps new rows with
    the account and blocks only on its rows, and ``update`` refuses another account's row. Rows written
    before the ledger kept identities are claimed, with a note, by the first real account bound in their
    region (a simulator claims none). ``bind(ledger, None)`` is the whole ledger, unbound.
    """
    if identity == ledger.identity:
        return ledger  # already this account's view: its old rows were claimed when it was made
    view = copy.copy(ledger)
    view.identity = identity
    if identity is not None and not identity.simulator:
        adopt(view, identity)
    return view


def scope(identity: Identity | None) -> tuple[ColumnElement[bool], ...]:
    """The conditions that keep a query to the rows of the account ``identity`` (none when unbound)."""
    if identity is None:
        return ()
    return (
        exports.c.endpoint == identity.endpoint,
        func.coalesce(exports.c.project_id, "") == (identity.project_id or ""),
    )


def claim_key(identity: Identity | None, image_id: str, project_id: str | None) -> str:
    """The unique key of an image's live claim in the account: ``endpoint|project_id|image_id`` (unbound: the
    row's project alone)."""
    endpoint, project = (identity.endpoint, identity.project_id) if identity is not None else (None, project_id)
    return f"{endpoint or ''}|{project or ''}|{image_id}"


def stamp(db: Connection, row_id: int, identity: Identity | None) -> None:
    """A claimed row records the account that launched it (endpoint, project, access key id or user), and who
    launched it where (the IAM user when known, the host)."""
    if identity is not None:
        db.execute(update(exports).where(exports.c.row_id == row_id).values(
            endpoint=identity.endpoint, project_id=identity.project_id, launched_by=identity.principal,
            launched_user=identity.user, launched_host=identity.host,
            region=func.coalesce(exports.c.region, identity.region)))  # fmt: skip


def refuse_foreign(ledger: Ledger, row_id: int) -> None:
    """Raise the error of an update that changed no row of a bound ledger: the row is another account's."""
    if ledger.identity is not None:
        raise ConfigError(f"ledger row {row_id} belongs to another account ({belongs_to(ledger.row(row_id))}); it "
                          f"was not changed, as {ledger.identity} cannot know its job")  # fmt: skip


def adopt(ledger: Ledger, identity: Identity) -> None:
    """Rows without identity in this account's region become its rows, each with a note that says so.

    Rows in doubt (cut off mid-POST, or whose answer was lost) are left alone: reconciling them may send the
    export again, and an old row may have been a simulator's, so only rows the service can vouch for (a job
    id it will answer for, or a final state) are claimed; the rest stay with the unknown account.
    """
    note = noted(f"claimed by {identity}: recorded before the ledger kept identities")
    with ledger.transaction() as db:
        claimed = db.execute(
            update(exports)
            .where(exports.c.endpoint.is_(None), exports.c.region == identity.region,
                   exports.c.state.not_in((State.SUBMITTING.value, State.UNKNOWN.value)))
            .values(endpoint=identity.endpoint, project_id=identity.project_id, adopted_at=time.time(), note=note)
        ).rowcount  # fmt: skip
    if claimed:
        log.info("the ledger %s: %d row(s) without identity claimed by %s", ledger.where, claimed, identity)


def disown(ledger: Ledger, row_id: int, reason: str) -> None:
    """Give a claimed row (``adopt``) back: its account is unknown again, and its note says why."""
    with ledger.transaction() as db:
        db.execute(
            update(exports)
            .where(exports.c.row_id == row_id, exports.c.adopted_at.is_not(None))
            .values(endpoint=None, project_id=None, adopted_at=None, note=reason, updated_at=time.time())
        )


def noted(text: str) -> ColumnElement[str]:
    """A row's note with ``text`` put first (its earlier note kept after it)."""
    return literal(text, String) + func.coalesce(literal("; ", String) + exports.c.note, "")
