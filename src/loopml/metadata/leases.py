"""Named leases in the metadata store: at most one holder at a time, until expiry.

A scheduler holds ``scheduler`` while it runs; a schedule firing takes
``trigger:<id>:<due time>`` so two schedulers never fire the same slot twice.
A holder that dies simply lets its lease expire.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from loopml.kernel.exceptions import AlreadyExistsError, ConcurrencyError
from loopml.kernel.types import utcnow
from loopml.metadata._orm import Lease
from loopml.metadata.store import MetadataStore

__all__ = ["acquire_lease", "lease_holder", "release_lease"]


def _acquire(session: Session, name: str, holder: str, ttl_s: float, now: datetime) -> bool:
    row = session.execute(select(Lease).where(Lease.name == name).with_for_update()).scalar_one_or_none()
    expires = now + timedelta(seconds=ttl_s)
    if row is None:
        session.add(Lease(name=name, holder=holder, expires_at=expires))
        session.flush()
        return True
    if row.holder == holder or row.expires_at <= now:
        row.holder = holder
        row.expires_at = expires
        return True
    return False


def acquire_lease(store: MetadataStore, name: str, holder: str, ttl_s: float, *, now: datetime | None = None) -> bool:
    """Take or renew ``name`` for ``holder`` for ``ttl_s`` seconds; False if someone else holds it."""
    try:
        with store.write(holder) as tx:
            return _acquire(tx.session, name, holder, ttl_s, now or utcnow())
    except (AlreadyExistsError, ConcurrencyError):
        return False  # another holder inserted it first


def release_lease(store: MetadataStore, name: str, holder: str) -> None:
    """Give ``name`` up if ``holder`` has it (a no-op otherwise)."""
    with store.write(holder) as tx:
        row = tx.session.get(Lease, name)
        if row is not None and row.holder == holder:
            tx.session.delete(row)


def lease_holder(store: MetadataStore, name: str, *, now: datetime | None = None) -> str | None:
    with store.read() as session:
        row = session.get(Lease, name)
        if row is None or row.expires_at <= (now or utcnow()):
            return None
        return row.holder
