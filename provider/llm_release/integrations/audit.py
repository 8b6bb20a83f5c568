"""Append-only, hash-chained audit trail of a release (spec section 8, "Audit Trail Requirements").

Each record carries ``prev_hash`` and its own ``hash`` (SHA-256 of the canonical JSON of every other field),
so editing, reordering or deleting a record breaks the chain and :meth:`JsonlAuditStore.verify` names the
first bad sequence number. A sidecar ``<file>.head`` holds the last seq/hash so truncating the tail is caught
too. Appends take an exclusive ``fcntl.flock`` and fsync, so concurrent Airflow tasks on one machine keep a
single valid chain. Retried tasks pass a stable ``event_id``: an event already recorded is not written again.

The JSONL file is the local store; shipping it to an object-locked bucket is a separate concern.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import json
import logging
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from llm_release.integrations.secret_guard import assert_no_secrets

log = logging.getLogger(__name__)

GENESIS_HASH = "0" * 64

AuditKind = Literal[
    "release_opened",
    "gate_verdict",
    "decision_score",
    "approval",
    "human_review",
    "page",
    "page_answer",
    "monitoring_alert",
    "traffic_change",
    "dwell_result",
    "rollback",
    "rejection",
    "promotion",
    "notification",
    "release_closed",
]


class AuditError(RuntimeError):
    """The audit file is unreadable or its chain is broken; nothing further is appended to it."""


class AuditEvent(BaseModel):
    """What a task wants recorded. ``event_id`` makes the write idempotent across task retries."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    release_id: str = Field(min_length=1)
    kind: AuditKind
    stage: str = Field(min_length=1)
    actor: str = Field(min_length=1)
    payload: dict[str, Any] = Field(default_factory=dict)
    event_id: str | None = None

    @field_validator("payload")
    @classmethod
    def _no_secrets(cls, payload: dict[str, Any]) -> dict[str, Any]:
        assert_no_secrets(payload, "audit event payload")
        try:
            json.dumps(payload, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"audit payload must be plain JSON without NaN/inf: {exc}") from exc
        return payload


class AuditRecord(AuditEvent):
    """A stored event: position in the chain, UTC time, and the chain hashes."""

    event_id: str
    seq: int = Field(ge=1)
    ts: str
    prev_hash: str
    hash: str

    def compute_hash(self) -> str:
        return record_hash(self.model_dump(exclude={"hash"}))


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def record_hash(fields: dict[str, Any]) -> str:
    """SHA-256 over the canonical JSON of every record field except ``hash`` (``prev_hash`` included)."""
    return hashlib.sha256(canonical_json(fields).encode("utf-8")).hexdigest()


@runtime_checkable
class AuditStore(Protocol):
    def append(self, event: AuditEvent) -> AuditRecord: ...

    def read(self, release_id: str | None = None) -> list[AuditRecord]: ...

    def verify(self) -> tuple[bool, int | None]: ...


class JsonlAuditStore:
    """One JSON record per line; ``<path>.lock`` serialises writers, ``<path>.head`` anchors the tail."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self.head_path = self.path.with_name(self.path.name + ".head")

    def __repr__(self) -> str:
        return f"JsonlAuditStore({str(self.path)!r})"

    @contextmanager
    def _locked(self, exclusive: bool) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def _load(self) -> list[AuditRecord]:
        """Parse every line; raises AuditError naming the line (1-based) that is not a valid record."""
        if not self.path.exists():
            return []
        records = []
        with self.path.open("r", encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, start=1):
                if not line.endswith("\n"):
                    raise AuditError(f"{self.path}:{lineno}: truncated record (no trailing newline)")
                try:
                    records.append(AuditRecord.model_validate_json(line))
                except ValidationError as exc:
                    raise AuditError(f"{self.path}:{lineno}: not a valid audit record: {exc}") from exc
        return records

    def _write_head(self, record: AuditRecord) -> None:
        tmp = self.head_path.with_name(self.head_path.name + ".tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            fh.write(canonical_json({"seq": record.seq, "hash": record.hash}))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.head_path)

    def append(self, event: AuditEvent) -> AuditRecord:
        """Append under an exclusive lock; an already recorded ``event_id`` returns the stored record."""
        if not isinstance(event, AuditEvent) or isinstance(event, AuditRecord):
            raise TypeError(f"append() takes an AuditEvent, got {type(event).__name__}")
        with self._locked(exclusive=True):
            records = self._load()
            ok, bad = _check_chain(records, self._read_head())
            if not ok:
                raise AuditError(f"{self.path}: hash chain broken at seq {bad}; refusing to append")
            if event.event_id is not None:
                for rec in records:
                    if rec.event_id == event.event_id:
                        if rec.model_dump(include=set(AuditEvent.model_fields)) != event.model_dump():
                            log.warning(
                                "audit event %s already recorded with different content; keeping the "
                                "first record (seq %d)",
                                event.event_id,
                                rec.seq,
                            )
                        return rec
            last = records[-1] if records else None
            fields = {
                **event.model_dump(),
                "event_id": event.event_id or uuid.uuid4().hex,
                "seq": (last.seq + 1) if last else 1,
                "ts": dt.datetime.now(dt.UTC).isoformat(timespec="microseconds"),
                "prev_hash": last.hash if last else GENESIS_HASH,
            }
            record = AuditRecord(**fields, hash=record_hash(fields))
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(canonical_json(record.model_dump()) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            self._write_head(record)
            return record

    def read(self, release_id: str | None = None) -> list[AuditRecord]:
        with self._locked(exclusive=False):
            records = self._load()
        return [r for r in records if release_id is None or r.release_id == release_id]

    def _read_head(self) -> dict[str, Any] | None:
        if not self.head_path.exists():
            return None
        try:
            head = json.loads(self.head_path.read_text(encoding="utf-8"))
            return {"seq": int(head["seq"]), "hash": str(head["hash"])}
        except (ValueError, KeyError, TypeError) as exc:
            raise AuditError(f"{self.head_path}: unreadable chain head: {exc}") from exc

    def verify(self) -> tuple[bool, int | None]:
        """(True, None) for an intact chain, else (False, first bad seq). Unparsable lines count as bad."""
        with self._locked(exclusive=False):
            try:
                records = self._load()
            except AuditError:
                return False, self._first_unparsable_seq()
            head = self._read_head()
        return _check_chain(records, head)

    def _first_unparsable_seq(self) -> int:
        with self.path.open("r", encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, start=1):
                try:
                    AuditRecord.model_validate_json(line)
                except ValidationError:
                    return lineno
        return 1  # pragma: no cover - only reached when the file changed between two reads


def _check_chain(records: list[AuditRecord], head: dict[str, Any] | None) -> tuple[bool, int | None]:
    prev = GENESIS_HASH
    for expected_seq, rec in enumerate(records, start=1):
        if rec.seq != expected_seq or rec.prev_hash != prev or rec.compute_hash() != rec.hash:
            return False, expected_seq
        prev = rec.hash
    if head is not None:
        last_seq = records[-1].seq if records else 0
        if head["seq"] > last_seq:
            return False, last_seq + 1  # records were removed from the end
        if head["seq"] == last_seq - 1 and head["hash"] == (records[-2].hash if len(records) > 1 else None):
            return True, None  # crash between the record's fsync and the head update: the chain is intact
        if head["seq"] < last_seq:
            return False, head["seq"] + 1  # records appended without going through the store
        if head["seq"] == last_seq and records and head["hash"] != records[-1].hash:
            return False, last_seq
    elif len(records) > 1:  # one record without head = crash right after the very first append
        return False, records[-1].seq  # head missing although records exist
    return True, None
