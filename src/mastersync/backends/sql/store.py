"""A store on a SQLAlchemy engine; the dialect packages configure engine and writer."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

from mastersync.backends.sql import migrate
from mastersync.backends.sql.reader import BatchReader
from mastersync.backends.sql.uow import SqlUnitOfWork
from mastersync.backends.sql.writer import BatchWriter
from mastersync.ports.store import SchemaOutdated, StoreError


class SqlStore:
    """Golden records, xrefs, lineage, outbox and inbox in one SQL database."""

    uow_class: type[SqlUnitOfWork] = SqlUnitOfWork

    def __init__(
        self,
        url: str,
        engine: sa.Engine,
        writer: BatchWriter,
        reader: BatchReader,
        *,
        lock_golden: bool,
    ) -> None:
        self.url = url
        self.engine = engine
        self.writer = writer
        self.reader = reader
        self._lock_golden = lock_golden
        self._checked = False

    def _begin(self, conn: sa.Connection, write: bool) -> None:
        conn.begin()

    @contextmanager
    def unit_of_work(self, *, write: bool = True) -> Iterator[SqlUnitOfWork]:
        """A transaction that rolls back unless committed."""
        self.check_schema()
        with self.engine.connect() as conn:
            self._begin(conn, write)
            uow = self.uow_class(
                conn, self.writer, self.reader, lock_golden=self._lock_golden and write
            )
            try:
                yield uow
            except BaseException:
                if conn.in_transaction():
                    # On a lost connection the rollback fails too; the first error says why.
                    with contextlib.suppress(sa.exc.DBAPIError):
                        conn.rollback()
                raise
            finally:
                if conn.in_transaction():
                    conn.rollback()

    def check_schema(self) -> None:
        """Fail with the command to run when the schema is behind this version."""
        if self._checked:
            return
        current, head = self.schema_revision()
        if current != head:
            raise SchemaOutdated(
                f"the store at {self.safe_url} is at schema revision {current or 'none'}, "
                f"this mastersync needs {head}: run `mastersync db upgrade`"
            )
        self._checked = True

    @property
    def safe_url(self) -> str:
        """The URL with any password hidden."""
        return sa.make_url(self.engine.url).render_as_string(hide_password=True)

    def upgrade(self) -> str | None:
        """Apply missing migrations; the revision the store was at."""
        try:
            found = migrate.upgrade(self.engine)
        except sa.exc.OperationalError as exc:
            raise StoreError(f"cannot upgrade {self.safe_url}: {exc.orig}") from exc
        self._checked = False
        return found

    def schema_revision(self) -> tuple[str | None, str]:
        """(current revision, head revision)."""
        try:
            return migrate.current(self.engine), migrate.head()
        except sa.exc.OperationalError as exc:
            raise StoreError(f"cannot open the store at {self.safe_url}: {exc.orig}") from exc

    def close(self) -> None:
        """Release pooled connections."""
        self.engine.dispose()
