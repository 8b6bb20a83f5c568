"""LocalTicketStore: idempotent opening, listing by kind, closing, bad input."""

from __future__ import annotations

import json
import threading

import pytest

from llm_release.integrations.secret_guard import SecretLeakError
from llm_release.integrations.tickets import LocalTicketStore, TicketError, TicketStore


def test_open_is_idempotent_on_dedupe_key(tmp_path):
    store = LocalTicketStore(tmp_path / "tickets")
    assert isinstance(store, TicketStore)
    t1 = store.open_ticket(
        "remediation", "rel-1", "Score 74: remediation", {"score": 74}, "rel-1:remediation"
    )
    t2 = store.open_ticket("remediation", "rel-1", "other title", {"score": 0}, "rel-1:remediation")
    assert t2 == t1 and t1.ticket_id.startswith("REM-") and t1.status == "open"
    on_disk = json.loads((tmp_path / "tickets" / f"{t1.ticket_id}.json").read_text())
    assert on_disk["body"] == {"score": 74}
    # same key, other kind: a different ticket
    t3 = store.open_ticket("incident", "rel-1", "Hard rejection", {"score": 60}, "rel-1:remediation")
    assert t3.ticket_id != t1.ticket_id and t3.ticket_id.startswith("INC-")


def test_list_open_and_close(tmp_path):
    store = LocalTicketStore(tmp_path)
    assert store.list_open() == []
    inc = store.open_ticket("incident", "rel-2", "Rollback", {"trigger": "error_rate"}, "rel-2:rollback")
    pir = store.open_ticket("post_incident_review", "rel-2", "PIR", {"incident": inc.ticket_id}, "rel-2:pir")
    assert [t.ticket_id for t in store.list_open()] == sorted(
        [inc.ticket_id, pir.ticket_id], key=lambda i: (store.get(i).created_at, i)
    )
    assert store.list_open("post_incident_review") == [pir]
    closed = store.close(pir.ticket_id, "root cause signed off by ML lead")
    assert closed.status == "closed" and closed.resolution.startswith("root cause") and closed.closed_at
    assert store.close(pir.ticket_id, "again") == closed
    assert store.list_open("post_incident_review") == []
    assert store.get(pir.ticket_id) == closed
    # reopening under the same dedupe key returns the closed ticket rather than a duplicate
    assert store.open_ticket("post_incident_review", "rel-2", "PIR", {}, "rel-2:pir") == closed


def test_errors(tmp_path):
    store = LocalTicketStore(tmp_path)
    with pytest.raises(TicketError, match="no ticket REM-000000000000"):
        store.close("REM-000000000000", "x")
    with pytest.raises(TicketError, match="not a ticket id"):
        store.get("../../etc/passwd")
    with pytest.raises(ValueError, match="kind"):
        store.open_ticket("bug", "r", "t", {}, "k")
    with pytest.raises(SecretLeakError, match=r"\$.token"):
        store.open_ticket("incident", "r", "t", {"token": "abc"}, "k")
    t = store.open_ticket("incident", "r", "t", {}, "k2")
    with pytest.raises(ValueError, match="resolution"):
        store.close(t.ticket_id, " ")
    (tmp_path / f"{t.ticket_id}.json").write_text("{broken")
    with pytest.raises(TicketError, match=f"{t.ticket_id}.json: not a valid ticket"):
        store.list_open()


def test_concurrent_open_creates_one_ticket(tmp_path):
    store = LocalTicketStore(tmp_path)
    results = []
    threads = [
        threading.Thread(
            target=lambda: results.append(
                store.open_ticket("incident", "rel-3", "Rollback", {"n": 1}, "rel-3:rollback")
            )
        )
        for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len({r.ticket_id for r in results}) == 1 and len(results) == 8
    assert len(list(tmp_path.glob("*.json"))) == 1
    assert len({r.created_at for r in results}) == 1
