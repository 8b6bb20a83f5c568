"""JsonlAuditStore: chain integrity, tamper detection, idempotency, secret refusal, multiprocess appends."""

from __future__ import annotations

import itertools
import json
import multiprocessing as mp

import pytest
from pydantic import ValidationError

from llm_release.integrations.audit import (
    GENESIS_HASH,
    AuditError,
    AuditEvent,
    AuditStore,
    JsonlAuditStore,
)


def event(i: int, release="rel-1", event_id=None, **payload) -> AuditEvent:
    return AuditEvent(
        release_id=release,
        kind="gate_verdict",
        stage=f"stage_{i % 5 + 1}",
        actor="airflow",
        payload={"i": i, **payload},
        event_id=event_id,
    )


def filled(tmp_path, n=5) -> JsonlAuditStore:
    store = JsonlAuditStore(tmp_path / "audit" / "trail.jsonl")
    for i in range(n):
        store.append(event(i, release="rel-1" if i % 2 == 0 else "rel-2"))
    return store


def rewrite(store: JsonlAuditStore, mutate) -> None:
    lines = store.path.read_text().splitlines(keepends=True)
    store.path.write_text("".join(mutate(lines)))


def test_chain_links_and_reads(tmp_path):
    store = filled(tmp_path)
    assert isinstance(store, AuditStore)
    records = store.read()
    assert [r.seq for r in records] == [1, 2, 3, 4, 5]
    assert records[0].prev_hash == GENESIS_HASH
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(records))
    assert all(r.hash == r.compute_hash() and r.ts.endswith("+00:00") for r in records)
    assert [r.seq for r in store.read("rel-2")] == [2, 4]
    assert store.verify() == (True, None)


def test_idempotent_by_event_id(tmp_path):
    store = filled(tmp_path, 2)
    first = store.append(event(9, event_id="rel-1:stage_2:gate"))
    again = store.append(event(9, event_id="rel-1:stage_2:gate", retried=True))
    assert again == first
    assert len(store.read()) == 3
    assert store.append(event(10)).event_id != store.append(event(10)).event_id  # no id: always new


def test_edit_detected(tmp_path):
    store = filled(tmp_path)

    def edit(lines):
        rec = json.loads(lines[2])
        rec["payload"]["i"] = 999
        lines[2] = json.dumps(rec) + "\n"
        return lines

    rewrite(store, edit)
    assert store.verify() == (False, 3)
    with pytest.raises(AuditError, match="chain broken at seq 3"):
        store.append(event(7))


def test_edit_with_recomputed_hash_still_breaks_next_link(tmp_path):
    from llm_release.integrations.audit import record_hash

    store = filled(tmp_path)

    def forge(lines):
        rec = json.loads(lines[1])
        rec["actor"] = "mallory"
        rec["hash"] = record_hash({k: v for k, v in rec.items() if k != "hash"})
        lines[1] = json.dumps(rec) + "\n"
        return lines

    rewrite(store, forge)
    assert store.verify() == (False, 3)


def test_deletion_in_middle_and_at_end_detected(tmp_path):
    store = filled(tmp_path)
    rewrite(store, lambda lines: lines[:1] + lines[2:])
    assert store.verify() == (False, 2)

    store = filled(tmp_path / "b")
    rewrite(store, lambda lines: lines[:-2])  # truncation: only the head anchor can notice
    assert store.verify() == (False, 4)


def test_garbage_line_detected(tmp_path):
    store = filled(tmp_path)
    rewrite(store, lambda lines: [*lines[:3], "not json\n", *lines[3:]])
    assert store.verify() == (False, 4)
    with pytest.raises(AuditError, match=r"trail.jsonl:4: not a valid audit record"):
        store.read()


def test_crash_between_record_and_head_is_tolerated_and_healed(tmp_path):
    store = filled(tmp_path, 3)
    head = store.head_path.read_text()
    store.append(event(3))
    store.head_path.write_text(head)  # simulate a crash before the head was updated
    assert store.verify() == (True, None)
    store.append(event(4))
    assert store.verify() == (True, None) and json.loads(store.head_path.read_text())["seq"] == 5


@pytest.mark.parametrize(
    "payload",
    [
        {"api_key": "x"},
        {"nested": {"Authorization": "x"}},
        {"auth_token": "x"},
        {"db": [{"password": "x"}]},
        {"header": "Bearer abc.def"},
    ],
)
def test_refuses_secret_looking_payload(payload):
    with pytest.raises(ValidationError, match="credentials"):
        AuditEvent(release_id="r", kind="approval", stage="s", actor="a", payload=payload)


def test_allows_ordinary_llm_vocabulary_and_rejects_nan():
    AuditEvent(
        release_id="r",
        kind="decision_score",
        stage="s",
        actor="a",
        payload={"max_tokens": 512, "completion_tokens": 30, "tokenizer": "x"},
    )
    with pytest.raises(ValidationError, match="NaN"):
        AuditEvent(release_id="r", kind="decision_score", stage="s", actor="a", payload={"x": float("nan")})
    with pytest.raises(ValidationError):
        AuditEvent(release_id="r", kind="coffee_break", stage="s", actor="a")


def _worker(path: str, worker: int, n: int) -> None:
    store = JsonlAuditStore(path)
    for i in range(n):
        store.append(
            AuditEvent(
                release_id=f"rel-{worker}",
                kind="traffic_change",
                stage="stage_5",
                actor=f"worker-{worker}",
                payload={"i": i},
                event_id=f"{worker}-{i}",
            )
        )


def test_concurrent_processes_keep_one_valid_chain(tmp_path):
    path = str(tmp_path / "trail.jsonl")
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_worker, args=(path, w, 25)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    store = JsonlAuditStore(path)
    records = store.read()
    assert [r.seq for r in records] == list(range(1, 101))
    assert {r.event_id for r in records} == {f"{w}-{i}" for w in range(4) for i in range(25)}
    assert store.verify() == (True, None)
