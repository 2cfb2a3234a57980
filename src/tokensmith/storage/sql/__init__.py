"""The SQLAlchemy store: one implementation for SQLite and PostgreSQL."""

from tokensmith.storage.sql.engine import make_engine, normalize_url
from tokensmith.storage.sql.migrate import migrate
from tokensmith.storage.sql.store import SqlStore

__all__ = ["SqlStore", "make_engine", "migrate", "normalize_url"]
