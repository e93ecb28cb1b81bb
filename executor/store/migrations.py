"""Schema versions: each entry upgrades the schema from the previous version by one.

Both backends run the same entries: written with SQLite's type names, which PostgreSQL
reads with `postgres_types` (BLOB is BYTEA there, REAL a double: unix seconds need it).
"""

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
    # 2: call records (SPEC.md "Call records"), newest first by id (a ULID: time-ordered),
    # and their captured logs apart, so that listing calls never reads a log. Times are
    # unix seconds (the API shows RFC 3339): cheaper to write, and calls are many.
    """
    CREATE TABLE calls (
        id TEXT PRIMARY KEY,
        app TEXT NOT NULL,
        route TEXT NOT NULL,
        method TEXT NOT NULL,
        state TEXT NOT NULL,
        http_status INTEGER,
        start TEXT,
        container_id TEXT,
        created_at REAL NOT NULL,
        started_at REAL,
        completed_at REAL,
        wait_ms REAL,
        start_ms REAL,
        exec_ms REAL,
        error TEXT
    );
    CREATE INDEX calls_by_app ON calls (app, id);
    CREATE TABLE call_logs (id TEXT PRIMARY KEY, log TEXT NOT NULL);
    """,
    # 3: async calls (SPEC.md `type: async`). A queued or running call keeps its request
    # here until it ends; `attempts` counts its runs begun, so that a restart knows which
    # calls were running (their state) and whether a retry is left. An async call's
    # response (up to a cap) is kept with its record.
    """
    CREATE TABLE queue (
        id TEXT PRIMARY KEY,
        app TEXT NOT NULL,
        route TEXT NOT NULL,
        method TEXT NOT NULL,
        url BLOB NOT NULL,  -- UTF-8, or the raw bytes of a URL that is not
        headers TEXT NOT NULL,
        body BLOB NOT NULL,
        created_at REAL NOT NULL,
        state TEXT NOT NULL,
        attempts INTEGER NOT NULL
    );
    CREATE TABLE call_responses (
        id TEXT PRIMARY KEY,
        status INTEGER NOT NULL,
        headers TEXT NOT NULL,
        body BLOB NOT NULL,
        truncated INTEGER NOT NULL
    );
    """,
    # 4: each route's rhythm (executor/pool/rhythm.py): the histogram of its idle times,
    # so that `idle_timeout: "auto"` does not forget it at a restart.
    """
    CREATE TABLE rhythms (
        app TEXT NOT NULL,
        path TEXT NOT NULL,
        counts TEXT NOT NULL,
        beyond INTEGER NOT NULL,
        PRIMARY KEY (app, path)
    );
    """,
    # 5: the node that wrote each call record (SPEC.md's records say which node ran a
    # call: several executors share a PostgreSQL store); the node running each async call
    # and its lease (unix seconds), renewed while it runs: past it, another node takes the
    # call over (its node died).
    """
    ALTER TABLE calls ADD COLUMN node TEXT;
    ALTER TABLE queue ADD COLUMN node TEXT;
    ALTER TABLE queue ADD COLUMN lease_until REAL;
    """,
]

# Every table the migrations make: one missing is a damaged database, named at start-up.
TABLES = ("meta", "apps", "routes", "calls", "call_logs", "queue", "call_responses", "rhythms")


def postgres_types(sql: str) -> str:
    return sql.replace(" BLOB", " BYTEA").replace(" REAL", " DOUBLE PRECISION")
