"""A persistent cache of LLM-judge verdicts, one row per (item, repeat).

Judging the same answer again (a retried task, a re-run of the offline suite) must neither pay the
endpoint again nor draw a fresh sample of its non-determinism. The key is the sha256 of everything the
verdict depends on: judge model, rubric version, query, response, grounding evidence and the repeat
index (so the N repeats of an item stay N distinct samples).

Only parsed verdicts are stored: a transport error or an unparsable reply is never cached, so a
transient failure cannot become a permanent one.

Storage is one SQLite file (WAL mode, so several worker processes may share a cache directory). Each
operation takes a process-wide lock and commits at once, so threads and asyncio tasks may share a cache.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from llm_release.suites.judging import RepeatVerdict

CACHE_FILE = "llm_judge_cache.sqlite3"
_SCHEMA = "CREATE TABLE IF NOT EXISTS verdicts (key TEXT PRIMARY KEY, value TEXT NOT NULL, created REAL NOT NULL)"


def cache_key(model: str, rubric_version: str, query: str, response: str, evidence: Sequence[Any],
              repeat: int) -> str:
    """sha256 over a canonical JSON of the inputs (unambiguous: no two inputs share a serialisation)."""
    payload = json.dumps(
        {"model": model, "rubric": rubric_version, "query": query, "response": response,
         "evidence": [asdict(e) if hasattr(e, "__dataclass_fields__") else e for e in evidence],
         "repeat": repeat},
        sort_keys=True, ensure_ascii=False, separators=(",", ":"),
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class JudgeCache:
    """SQLite-backed verdict cache; ``JudgeCache.in_dir(path)`` puts it at ``path/llm_judge_cache.sqlite3``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=30.0, isolation_level=None)
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise ValueError(f"judge cache {self.path}: not a usable SQLite file ({exc})") from exc

    @classmethod
    def in_dir(cls, directory: str | Path) -> JudgeCache:
        return cls(Path(directory) / CACHE_FILE)

    def __repr__(self) -> str:
        return f"JudgeCache({str(self.path)!r})"

    def get(self, key: str) -> RepeatVerdict | None:
        """The cached verdict, or None (also for a row that no longer matches the verdict's shape)."""
        with self._lock:
            row = self._db.execute("SELECT value FROM verdicts WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        try:
            return RepeatVerdict(**json.loads(row[0]))
        except (TypeError, ValueError):
            return None  # written by an incompatible version: judge again rather than trust it

    def put(self, key: str, verdict: RepeatVerdict) -> None:
        value = json.dumps(asdict(verdict), sort_keys=True)
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO verdicts (key, value, created) VALUES (?, ?, ?)",
                             (key, value, time.time()))

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM verdicts").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
