"""Persistent cache in one SQLite file: embedded, survives restarts, no server to run.

sqlite3 blocks, so every call runs on one dedicated worker thread that owns the connection;
the event loop only awaits. WAL mode lets readers in other processes (a second server, the
``score`` CLI) proceed while this one writes.
"""

from __future__ import annotations

import asyncio
import logging
import math
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from judge_server.cache.base import EVICT_FRACTION, CachedResult, CacheError, ResultCache

log = logging.getLogger(__name__)

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS results_created ON results (created);
"""
#: Other processes sharing the file make our row count drift; recount this often.
_RECOUNT_EVERY = 1024
#: Expired rows are deleted at most this often; reads ignore them in between.
_PURGE_EVERY_S = 60.0
#: Keys per SELECT of a batched read (SQLite bounds a statement's parameters: 999 before 3.32).
_KEYS_PER_SELECT = 500


class SQLiteCache(ResultCache):
    """``key -> value`` in the table ``results``; with ``max_entries``, the oldest writes go first
    (in batches of ``EVICT_FRACTION``); with ``ttl_s``, a result older than that is a miss.

    Age is the time of the last write, not of the last read: recency of reads is the memory
    tier's job, and writing on every hit would cost more than it saves.
    """

    tier = "sqlite"

    def __init__(
        self, path: Path, *, max_entries: int | None = None, ttl_s: float | None = None
    ) -> None:
        super().__init__()
        if max_entries is not None and max_entries < 1:
            raise ValueError(f"max_entries must be >= 1 or None, got {max_entries}")
        if ttl_s is not None and ttl_s <= 0:
            raise ValueError(f"ttl_s must be positive or None, got {ttl_s}")
        self.path = path
        self.max_entries = max_entries
        self.ttl_s = ttl_s
        self._last_purge = -math.inf
        self._executor: ThreadPoolExecutor | None = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="judge-cache-sqlite"
        )
        self._conn: sqlite3.Connection | None = None
        self._count = 0
        self._puts_since_recount = 0
        try:
            # Opened on the worker thread, which then owns the connection.
            self._executor.submit(self._open).result()
        except BaseException:
            self._executor.shutdown(wait=True)
            self._executor = None
            raise

    def _open(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise CacheError(f"cannot open result cache {self.path}: {exc}") from exc
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            # A cache may lose its last writes on power loss; it must never lose consistency.
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=5000")
            conn.executescript(_SCHEMA)
            self._count = conn.execute("SELECT COUNT(*) FROM results").fetchone()[0]
        except sqlite3.Error as exc:
            conn.close()
            raise CacheError(f"cannot open result cache {self.path}: {exc}") from exc
        self._conn = conn

    async def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        executor = self._executor
        if executor is None:
            raise CacheError(f"result cache {self.path} is closed")
        return await asyncio.get_running_loop().run_in_executor(executor, self._with_conn, fn)

    def _with_conn(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._conn is None:
            raise CacheError(f"result cache {self.path} is closed")
        try:
            return fn(self._conn)
        except sqlite3.Error as exc:
            raise CacheError(f"result cache {self.path}: {exc}") from exc

    def entries(self) -> int:
        """Rows in the file, as last counted (other processes writing to it make it drift)."""
        return self._count

    def _oldest_kept(self, now: float) -> float:
        return -math.inf if self.ttl_s is None else now - self.ttl_s

    async def get(self, key: str) -> CachedResult | None:
        return (await self.get_many([key]))[0]

    async def get_many(self, keys: Sequence[str]) -> list[CachedResult | None]:
        """One round trip to the worker thread for all of ``keys``."""
        oldest = self._oldest_kept(time.time())
        try:
            rows = await self._call(lambda conn: self._select(conn, keys, oldest))
        except CacheError as exc:
            if self._executor is None:
                raise
            log.warning("result cache read failed, treating as a miss: %s", exc)
            self.stats.errors += 1
            rows = {}
        return [self._decode(key, rows.get(key)) for key in keys]

    @staticmethod
    def _select(conn: sqlite3.Connection, keys: Sequence[str], oldest: float) -> dict[str, str]:
        found: dict[str, str] = {}
        distinct = list(dict.fromkeys(keys))
        for start in range(0, len(distinct), _KEYS_PER_SELECT):
            chunk = distinct[start : start + _KEYS_PER_SELECT]
            marks = ",".join("?" * len(chunk))
            found.update(
                conn.execute(
                    f"SELECT key, value FROM results WHERE key IN ({marks}) AND created >= ?",
                    (*chunk, oldest),
                ).fetchall()
            )
        return found

    async def put(self, key: str, value: CachedResult) -> None:
        await self.put_many([(key, value)])

    async def put_many(self, entries: Sequence[tuple[str, CachedResult]]) -> None:
        """Every entry in one transaction, on one trip to the worker thread."""
        if not entries:
            return
        rows = [(key, value.to_json()) for key, value in entries]
        evicted, expired = await self._call(lambda conn: self._put(conn, rows))
        self.stats.puts += len(rows)
        self.stats.evictions += evicted
        self.stats.expired += expired

    def _put(self, conn: sqlite3.Connection, rows: Sequence[tuple[str, str]]) -> tuple[int, int]:
        """Upsert the rows on the worker thread, then purge and evict if due.

        Returns how many rows were evicted (over ``max_entries``) and purged (expired).
        """
        now = time.time()
        # One transaction, so the upserts and their eviction land together.
        conn.execute("BEGIN IMMEDIATE")
        try:
            count = self._count
            for key, text in rows:
                known = conn.execute("SELECT 1 FROM results WHERE key = ?", (key,)).fetchone()
                conn.execute(
                    "INSERT INTO results (key, value, created) VALUES (?, ?, ?) "
                    "ON CONFLICT (key) DO UPDATE "
                    "SET value = excluded.value, created = excluded.created",
                    (key, text, now),
                )
                count += known is None
            expired = self._purge(conn, now)
            count -= expired
            evicted = 0
            if self.max_entries is not None:
                self._puts_since_recount += len(rows)
                if self._puts_since_recount >= _RECOUNT_EVERY:
                    self._puts_since_recount = 0
                    count = conn.execute("SELECT COUNT(*) FROM results").fetchone()[0]
                if count > self.max_entries:
                    batch = max(1, int(self.max_entries * EVICT_FRACTION))
                    evicted = conn.execute(
                        "DELETE FROM results WHERE key IN "
                        "(SELECT key FROM results ORDER BY created, rowid LIMIT ?)",
                        (count - self.max_entries + batch - 1,),
                    ).rowcount
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        self._count = count - evicted
        return evicted, expired

    def _purge(self, conn: sqlite3.Connection, now: float) -> int:
        if self.ttl_s is None or now - self._last_purge < min(_PURGE_EVERY_S, self.ttl_s):
            return 0
        self._last_purge = now
        deleted: int = conn.execute(
            "DELETE FROM results WHERE created < ?", (self._oldest_kept(now),)
        ).rowcount
        return deleted

    async def close(self) -> None:
        executor, self._executor = self._executor, None
        if executor is None:
            return
        await asyncio.get_running_loop().run_in_executor(executor, self._close_conn)
        executor.shutdown(wait=True)

    def _close_conn(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
