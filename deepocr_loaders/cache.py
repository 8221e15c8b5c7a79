"""A page cache on SQLite: re-ingesting a folder re-runs nothing already done.

Key: document hash + page index + engine identity (name, model, mode...) + task + DPI. Only pages
that finished (``ok`` or ``truncated``) are stored; failed and needs-OCR pages are retried on the
next run, since their cause (a crash, a missing GPU) may be gone by then.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import random
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from .document import Page, PageStatus
from .errors import DeepOCRError

__all__ = ["CACHEABLE", "PageCache", "default_cache_path"]

log = logging.getLogger(__name__)

_OPEN_ATTEMPTS = 10

#: Statuses worth keeping: the engine finished these pages.
CACHEABLE = frozenset({PageStatus.OK, PageStatus.TRUNCATED})

_SCHEMA = """
CREATE TABLE IF NOT EXISTS pages (
    key TEXT PRIMARY KEY,
    doc_sha256 TEXT NOT NULL,
    page_index INTEGER NOT NULL,
    page_json TEXT NOT NULL,
    created REAL NOT NULL DEFAULT (julianday('now'))
)
"""


_SQLITE_HEADER = b"SQLite format 3\x00"


def _not_sqlite(path: Path) -> bool:
    """True for a non-empty file that does not start like an SQLite database."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(len(_SQLITE_HEADER))
    except OSError:
        return False  # missing (a new cache) or unreadable (reported when connecting)
    return bool(head) and head != _SQLITE_HEADER


def default_cache_path() -> Path:
    """``$DEEPOCR_CACHE`` or ``$XDG_CACHE_HOME/deepocr-loaders/pages.sqlite``."""
    env = os.environ.get("DEEPOCR_CACHE")
    if env:
        return Path(env)
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "deepocr-loaders" / "pages.sqlite"


class PageCache:
    """Finished pages by key, in one SQLite file; safe to share between processes.

    Picklable (it reconnects after unpickling), so readers that hold one survive the process
    pools of ``SimpleDirectoryReader(num_workers>1)``.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else default_cache_path()
        self._local = threading.local()

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            last: Exception | None = None
            set_aside = False
            # Worker processes opening a new cache together can briefly lock each other out of
            # the WAL switch (the busy timeout does not cover it): try again a few times.
            for attempt in range(_OPEN_ATTEMPTS):
                try:
                    if not set_aside and _not_sqlite(self.path):
                        set_aside = self._set_aside("not an SQLite database", check=True)
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                    # WAL + a busy timeout serialise writers from several processes.
                    conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
                    conn.execute("PRAGMA journal_mode=WAL")
                    conn.execute(_SCHEMA)
                    break
                except sqlite3.OperationalError as exc:
                    last = exc
                    time.sleep(0.05 * (attempt + 1) + random.random() * 0.05)
                except sqlite3.DatabaseError as exc:  # "file is not a database", "malformed"
                    if set_aside:
                        raise DeepOCRError(f"page cache {self.path}: cannot open ({exc})") from exc
                    if conn is not None:
                        conn.close()
                        conn = None
                    set_aside = self._set_aside(str(exc), check=False)
                    last = exc
                except (OSError, sqlite3.Error) as exc:
                    raise DeepOCRError(f"page cache {self.path}: cannot open ({exc})") from exc
            else:
                raise DeepOCRError(f"page cache {self.path}: cannot open ({last})") from last
            self._local.conn = conn
        return conn

    def _set_aside(self, reason: str, *, check: bool) -> bool:
        """Move a damaged cache file (and its WAL files) to ``<name>.corrupt-<time>`` and say so
        once; the next open starts a fresh cache. With ``check``, only a file that still does not
        look like SQLite is moved (another process may have replaced it meanwhile)."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        target = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        n = 1
        while target.exists():
            n += 1
            target = self.path.with_name(f"{self.path.name}.corrupt-{stamp}-{n}")
        if check and not _not_sqlite(self.path):
            return True
        try:
            os.replace(self.path, target)
        except FileNotFoundError:
            return True  # another process set it aside first
        except OSError as exc:
            raise DeepOCRError(
                f"page cache {self.path}: {reason}, and cannot move it ({exc})"
            ) from exc
        for suffix in ("-wal", "-shm"):
            with contextlib.suppress(OSError):
                os.replace(f"{self.path}{suffix}", f"{target}{suffix}")
        log.warning(
            "page cache %s is damaged (%s): moved it to %s and started a fresh cache",
            self.path,
            reason,
            target,
        )
        return True

    def _warn_once(self, kind: str, message: str, *args: object) -> None:
        """The first read or write failure is a warning; repeats (one per page) go to debug."""
        warned: set[str] = self.__dict__.setdefault("_warned", set())
        level = logging.DEBUG if kind in warned else logging.WARNING
        warned.add(kind)
        log.log(level, message, *args)

    @staticmethod
    def key(
        doc_sha256: str, page_index: int, identity: dict[str, Any], task: str, dpi: float
    ) -> str:
        """A stable key for one page result."""
        blob = json.dumps(
            [doc_sha256, page_index, identity, task, round(float(dpi), 3)],
            sort_keys=True,
            default=str,
        )
        return hashlib.sha256(blob.encode()).hexdigest()

    def get(self, key: str) -> Page | None:
        """The cached page, or None (also when the cache cannot be read: it is only a speed-up)."""
        try:
            row = (
                self._conn().execute("SELECT page_json FROM pages WHERE key = ?", (key,)).fetchone()
            )
        except (sqlite3.Error, DeepOCRError) as exc:
            self._warn_once("read", "page cache %s: read failed, recomputing (%s)", self.path, exc)
            return None
        if row is None:
            return None
        try:
            return Page.from_dict(json.loads(row[0]))
        except (ValueError, KeyError, TypeError):
            return None  # an entry from an incompatible version: recompute it

    def put(self, key: str, page: Page, doc_sha256: str = "") -> bool:
        """Store a finished page; returns False (and stores nothing) for other statuses, or when
        the cache cannot be written: a cache failure must never cost the page itself."""
        if page.status not in CACHEABLE:
            return False
        try:
            self._conn().execute(
                "INSERT OR REPLACE INTO pages (key, doc_sha256, page_index, page_json)"
                " VALUES (?, ?, ?, ?)",
                (key, doc_sha256, page.index, json.dumps(page.to_dict(), ensure_ascii=False)),
            )
        except (sqlite3.Error, DeepOCRError) as exc:
            self._warn_once(
                "write", "page cache %s: write failed, pages kept uncached (%s)", self.path, exc
            )
            return False
        return True

    def __len__(self) -> int:
        return int(self._conn().execute("SELECT COUNT(*) FROM pages").fetchone()[0])

    def clear(self) -> None:
        self._conn().execute("DELETE FROM pages")

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.path = state["path"]
        self._local = threading.local()

    def __repr__(self) -> str:
        return f"PageCache({str(self.path)!r})"
