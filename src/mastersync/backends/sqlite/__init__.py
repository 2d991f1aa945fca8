"""The embedded store: one SQLite file in WAL mode."""

from mastersync.backends.sqlite.store import open_sqlite

__all__ = ["open_sqlite"]
