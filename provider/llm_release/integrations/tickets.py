"""Local ticketing for remediation, incidents and post-incident reviews (one JSON file per ticket).

The spec auto-creates a remediation ticket on rejection, an incident on hard rejection or rollback, and
requires a post-incident review before the next release; the pipeline refuses to start while a
``post_incident_review`` ticket is open. Tickets are keyed by ``dedupe_key`` so a retried task finds the
ticket it already opened instead of filing a duplicate. A Jira/ServiceNow store would implement the same
three calls.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from llm_release.integrations.secret_guard import assert_no_secrets

TicketKind = Literal["remediation", "incident", "post_incident_review"]
_PREFIX = {"remediation": "REM", "incident": "INC", "post_incident_review": "PIR"}
_TICKET_ID = re.compile(r"^(REM|INC|PIR)-[0-9a-f]{12}$")


class TicketError(RuntimeError):
    """Unknown ticket id or an unreadable ticket file (the message names it)."""


class Ticket(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    ticket_id: str
    kind: TicketKind
    release_id: str = Field(min_length=1)
    title: str = Field(min_length=1)
    body: dict[str, Any]
    dedupe_key: str = Field(min_length=1)
    status: Literal["open", "closed"] = "open"
    created_at: str
    closed_at: str | None = None
    resolution: str | None = None


@runtime_checkable
class TicketStore(Protocol):
    def open_ticket(
        self, kind: TicketKind, release_id: str, title: str, body: dict[str, Any], dedupe_key: str
    ) -> Ticket: ...

    def list_open(self, kind: TicketKind | None = None) -> list[Ticket]: ...

    def close(self, ticket_id: str, resolution: str) -> Ticket: ...


def ticket_id_for(kind: str, dedupe_key: str) -> str:
    """Deterministic id, so the same (kind, dedupe_key) always maps to the same file."""
    digest = hashlib.sha256(f"{kind}\0{dedupe_key}".encode()).hexdigest()[:12]
    return f"{_PREFIX[kind]}-{digest}"


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


class LocalTicketStore:
    """Tickets as ``<directory>/<ticket_id>.json``, written atomically under a directory lock."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    def __repr__(self) -> str:
        return f"LocalTicketStore({str(self.directory)!r})"

    def _path(self, ticket_id: str) -> Path:
        if not _TICKET_ID.match(ticket_id):
            raise TicketError(f"not a ticket id: {ticket_id!r}")
        return self.directory / f"{ticket_id}.json"

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.directory / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def _read(self, path: Path) -> Ticket:
        try:
            return Ticket.model_validate_json(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise TicketError(f"no ticket {path.stem} in {self.directory}") from exc
        except ValidationError as exc:
            raise TicketError(f"{path}: not a valid ticket: {exc}") from exc

    def _write(self, ticket: Ticket, path: Path) -> None:
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            fh.write(json.dumps(ticket.model_dump(), indent=2, sort_keys=True) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)

    def open_ticket(
        self, kind: TicketKind, release_id: str, title: str, body: dict[str, Any], dedupe_key: str
    ) -> Ticket:
        """Open a ticket, or return the one already filed under (kind, dedupe_key), open or closed."""
        if kind not in _PREFIX:
            raise ValueError(f"ticket kind must be one of {sorted(_PREFIX)}, got {kind!r}")
        assert_no_secrets(body, f"body of {kind} ticket {title!r}")
        ticket = Ticket(
            ticket_id=ticket_id_for(kind, dedupe_key),
            kind=kind,
            release_id=release_id,
            title=title,
            body=body,
            dedupe_key=dedupe_key,
            created_at=_now(),
        )
        path = self._path(ticket.ticket_id)
        with self._locked():
            if path.exists():
                return self._read(path)
            self._write(ticket, path)
        return ticket

    def get(self, ticket_id: str) -> Ticket:
        return self._read(self._path(ticket_id))

    def list_all(self, kind: TicketKind | None = None) -> list[Ticket]:
        if not self.directory.exists():
            return []
        tickets = [self._read(p) for p in sorted(self.directory.glob("*.json"))]
        return sorted(
            (t for t in tickets if kind is None or t.kind == kind), key=lambda t: (t.created_at, t.ticket_id)
        )

    def list_open(self, kind: TicketKind | None = None) -> list[Ticket]:
        return [t for t in self.list_all(kind) if t.status == "open"]

    def close(self, ticket_id: str, resolution: str) -> Ticket:
        """Close with a resolution; closing an already closed ticket returns it unchanged."""
        if not resolution or not resolution.strip():
            raise ValueError("a resolution is required to close a ticket")
        path = self._path(ticket_id)
        with self._locked():
            ticket = self._read(path)
            if ticket.status == "closed":
                return ticket
            closed = ticket.model_copy(
                update={"status": "closed", "closed_at": _now(), "resolution": resolution}
            )
            self._write(closed, path)
        return closed
