"""SQLite persistence under the state directory: the asset inventory, baselines, incidents, operator actions.

One file, `<state_dir>/otwatch.sqlite`, in WAL mode while the sensor writes. On a clean close the journal mode
goes back to DELETE so that `Store.open_readonly` (the `otwatch inventory` command) creates no -wal/-shm files
next to an idle database. The schema version lives in the `meta` table; `_MIGRATIONS[n]` takes version n-1
to n. Each asset is one row: a few columns for queries and the full `Asset.to_dict()` as JSON.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import quote

from appliance.model import Asset

DB_NAME = "otwatch.sqlite"
SCHEMA_VERSION = 2

_MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        """CREATE TABLE IF NOT EXISTS assets (
            asset_id TEXT PRIMARY KEY,
            ip TEXT NOT NULL,
            mac TEXT,
            category TEXT NOT NULL,
            zone TEXT,
            first_seen REAL NOT NULL,
            last_seen REAL NOT NULL,
            data TEXT NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS assets_ip ON assets (ip)",
    ),
    2: (
        # incidents: one row per incident, its full record as JSON (appliance/incidents)
        """CREATE TABLE IF NOT EXISTS incidents (
            incident_id TEXT PRIMARY KEY,
            actor TEXT NOT NULL,
            state TEXT NOT NULL,
            severity TEXT NOT NULL,
            first_ts REAL NOT NULL,
            last_ts REAL NOT NULL,
            data TEXT NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS incidents_last ON incidents (last_ts)",
        # baselines: learned facts and models by kind and key, as JSON or bytes (appliance/baseline)
        """CREATE TABLE IF NOT EXISTS baselines (
            kind TEXT NOT NULL,
            key TEXT NOT NULL,
            data BLOB NOT NULL,
            PRIMARY KEY (kind, key)
        )""",
        # operator actions (mode switches, "learn this", incident state changes): who, when, what
        """CREATE TABLE IF NOT EXISTS actions (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            ts REAL NOT NULL,
            who TEXT NOT NULL,
            action TEXT NOT NULL,
            data TEXT NOT NULL
        )""",
    ),
}

_UPSERT = """INSERT INTO assets (asset_id, ip, mac, category, zone, first_seen, last_seen, data)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (asset_id) DO UPDATE SET ip = excluded.ip, mac = excluded.mac,
    category = excluded.category, zone = excluded.zone, first_seen = excluded.first_seen,
    last_seen = excluded.last_seen, data = excluded.data"""


class StoreError(OSError):
    """The state database cannot be opened or used; the message says which file and why."""


class Store:
    """The otwatch state database; one writer (the sensor), any number of read-only readers."""

    def __init__(self, state_dir: Path, *, _readonly: bool = False) -> None:
        self.path = Path(state_dir) / DB_NAME
        self.readonly = _readonly
        self.skipped_rows = 0  # rows that could not be read back (corrupt JSON, bad values)
        try:
            if _readonly:
                uri = f"file:{quote(str(self.path.resolve()))}?mode=ro"
                self._db = sqlite3.connect(uri, uri=True)
            else:
                Path(state_dir).mkdir(parents=True, exist_ok=True)
                self._db = sqlite3.connect(self.path)
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA busy_timeout=5000")
            self._check_schema()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path}: {exc}") from None

    @classmethod
    def open_readonly(cls, state_dir: Path) -> Store:
        """Open an existing database for reading only; never creates files. Raises StoreError if missing."""
        path = Path(state_dir) / DB_NAME
        if not path.is_file():
            raise StoreError(
                f"no otwatch database at {path}: the sensor has not run with this state directory yet "
                "(give another with --state DIR)"
            )
        return cls(state_dir, _readonly=True)

    def _version(self) -> int:
        has_meta = self._db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
        ).fetchone()
        if not has_meta:
            return 0
        row = self._db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        try:
            return int(row[0]) if row else 0
        except ValueError:
            raise StoreError(f"{self.path}: schema_version {row[0]!r} is not a number") from None

    def _check_schema(self) -> None:
        version = self._version()
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path}: schema version {version} is newer than this otwatch knows ({SCHEMA_VERSION})"
            )
        if self.readonly:
            if version == 0:
                raise StoreError(f"{self.path}: not an otwatch database (no schema version)")
            return
        if version == SCHEMA_VERSION:
            return
        with self._db:
            for step in range(version + 1, SCHEMA_VERSION + 1):
                for statement in _MIGRATIONS[step]:
                    self._db.execute(statement)
            self._db.execute(
                "INSERT INTO meta (key, value) VALUES ('schema_version', ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (str(SCHEMA_VERSION),),
            )

    @property
    def schema_version(self) -> int:
        """The schema version recorded in the database."""
        return self._version()

    def save_assets(self, assets: Iterable[Asset], removed: Iterable[str] = ()) -> None:
        """Insert or update every asset and delete the `removed` ids, in one transaction."""
        if self.readonly:
            raise StoreError(f"{self.path}: opened read-only")
        rows = [
            (
                a.asset_id, a.ip, a.mac, a.category, a.zone, a.first_seen, a.last_seen,
                json.dumps(a.to_dict(), separators=(",", ":")),
            )
            for a in assets
        ]
        with self._db:
            self._db.executemany(_UPSERT, rows)
            self._db.executemany("DELETE FROM assets WHERE asset_id = ?", [(i,) for i in removed])

    def load_assets(self) -> list[Asset]:
        """Every stored asset in discovery order; unreadable rows are skipped, counted in `skipped_rows`."""
        out: list[Asset] = []
        for (data,) in self._db.execute("SELECT data FROM assets ORDER BY first_seen, asset_id"):
            try:
                out.append(Asset.from_dict(json.loads(data)))
            except (ValueError, TypeError, KeyError, AttributeError):
                self.skipped_rows += 1
        return out

    @property
    def connection(self) -> sqlite3.Connection:
        """The open SQLite connection, for the modules that own the other tables (baselines, incidents, actions)."""
        return self._db

    def close(self) -> None:
        """Close the database; a writer first leaves WAL mode so read-only opens need no extra files."""
        if not self.readonly:
            # fails while a reader holds the database: it then stays in WAL, nothing is lost
            with contextlib.suppress(sqlite3.OperationalError):
                self._db.execute("PRAGMA journal_mode=DELETE")
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
