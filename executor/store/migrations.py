"""Schema versions: each entry upgrades the schema from the previous version by one."""

from __future__ import annotations

MIGRATIONS: list[str] = [
    # 1: apps, routes, and this database's group id (labels every container it runs).
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE apps (
        name TEXT PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        config TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE routes (
        app TEXT NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
        path TEXT NOT NULL,
        id TEXT NOT NULL UNIQUE,
        spec TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (app, path)
    );
    """,
]
