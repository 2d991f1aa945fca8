"""The store at scale: PostgreSQL through psycopg 3, bulk writes with COPY."""

from mastersync.backends.postgres.store import open_postgres

__all__ = ["open_postgres"]
