"""Knowledge base: loading/validation of the shipped YAML and TF-IDF retrieval quality."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from llm_release.suites.knowledge_base import CATEGORIES, KBEntry, KnowledgeBase, KnowledgeBaseError

# Paraphrases written independently of the KB questions (none of them appears in the YAML): the
# retriever must find the intended entry for most of them.
HELD_OUT = {
    "billing-payment-methods": ["Is PayPal an accepted way to pay?", "which cards do you take for payment"],
    "billing-plan-prices": ["what does the pro plan cost each month", "pricing for business tier"],
    "billing-annual-discount": ["do I get money off for paying for a whole year", "yearly billing discount?"],
    "billing-invoice-download": ["where are my invoices stored", "download receipt pdf"],
    "billing-failed-payment": ["my payment was declined what now", "the renewal charge on my card failed"],
    "billing-double-charge": ["I see a duplicate charge on my statement", "why was I charged two times"],
    "billing-tax-vat": ["how to enter my company VAT number", "remove VAT from invoice reverse charge"],
    "billing-change-plan": ["how do I downgrade to starter", "upgrade to business plan cost prorated?"],
    "billing-dispute": ["I dispute this invoice amount", "this charge is incorrect, I don't agree"],
    "billing-chargeback": [
        "I will open a chargeback with my credit card company",
        "my bank reversed the charge",
    ],
    "refunds-window": [
        "can I have my money back for last week's purchase",
        "how many days do I have to get a refund",
    ],
    "refunds-annual": ["refund for my yearly subscription", "cancel annual plan and get money back"],
    "refunds-processing-time": ["how long until my refund arrives", "refund approved but no money yet"],
    "refunds-hardware-return": ["how can I send back an item from the store", "return policy for a headset"],
    "refunds-account-credit": [
        "could you give me some credit for the outage",
        "compensation credit for downtime",
    ],
    "refunds-digital-addons": ["refund for an activated add-on", "are add-ons refundable"],
    "refunds-escalation": [
        "my refund was rejected, I want to appeal",
        "a manager should review my refund request",
    ],
    "shipping-times": ["how long is delivery", "when does my order get here"],
    "shipping-cost": ["is shipping free", "shipping fee for small orders"],
    "shipping-international": ["do you deliver to Germany", "international delivery time and customs"],
    "shipping-tracking": ["tracking number for my order", "how do I track my package"],
    "shipping-lost-package": ["my parcel is lost", "package never showed up"],
    "shipping-damaged": ["item arrived broken", "the box came damaged"],
    "shipping-address-change": ["wrong address on my order", "update delivery address after ordering"],
    "account-reset-password": ["forgot my password help", "reset link expired"],
    "account-change-email": ["change my login email address", "update email on account"],
    "account-add-users": ["invite a new team member", "add seats for colleagues"],
    "account-close": ["delete my account", "close my northwind account permanently"],
    "account-closure-dispute": ["why did you suspend my account", "appeal account suspension"],
    "account-data-export": ["export my workspace data", "backup download of all my data"],
    "account-locked": ["account locked after failed logins", "too many attempts locked out"],
    "security-two-factor": ["enable 2FA", "set up two factor authentication with an app"],
    "security-phishing": ["suspicious email asking for my password", "report phishing"],
    "security-compromised-account": ["my account got hacked", "unknown login on my account"],
    "security-certifications": ["are you ISO 27001 certified", "is my data encrypted at rest"],
    "technical-api-rate-limits": ["api returns 429 too many requests", "rate limit for the API"],
    "technical-status-page": ["is there an outage right now", "is the service down"],
    "technical-integrations": ["slack integration", "does it connect with zapier"],
    "technical-browser-support": ["does it work in Firefox", "supported browsers list"],
    "technical-desktop-sync": ["desktop app won't sync", "sync not working on laptop"],
    "legal-threat": ["I will sue you", "expect to hear from my lawyer"],
    "legal-gdpr-request": ["GDPR request for my personal data", "delete my personal data under GDPR"],
    "legal-liability-terms": ["are you liable for lost data", "liability in the terms of service"],
    "legal-sla": ["what is your uptime SLA", "uptime guarantee for business plan"],
    "escalation-human-agent": ["let me talk to a person", "I need a human agent"],
    "escalation-formal-complaint": ["I'd like to make a complaint", "file a complaint about support"],
    "escalation-business-outage": [
        "urgent: our business is blocked by your outage",
        "critical production issue",
    ],
}


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return KnowledgeBase.load()


def _write(tmp_path: Path, entries: list[dict]) -> Path:
    path = tmp_path / "kb.yaml"
    path.write_text(yaml.safe_dump({"entries": entries}), encoding="utf-8")
    return path


def _entry(**overrides) -> dict:
    record = {
        "id": "billing-x",
        "category": "billing",
        "questions": ["How much?", "What does it cost?", "Price?"],
        "answer": "It costs $10 per month.",
        "facts": ["$10"],
        "escalate": False,
    }
    record.update(overrides)
    return record


def test_shipped_kb_is_complete_and_consistent(kb: KnowledgeBase) -> None:
    assert 40 <= len(kb) <= 60
    assert {entry.category for entry in kb.entries} == set(CATEGORIES)
    for entry in kb.entries:
        assert 3 <= len(entry.questions) <= 5, entry.id
        assert entry.facts, entry.id
        assert entry.id.startswith(entry.category + "-"), entry.id
        if entry.escalate:
            assert "agent" in entry.answer.lower(), entry.id
    # The spec's high-stakes long tail must be represented and routed to a human.
    for escalated in ("billing-dispute", "billing-chargeback", "legal-threat", "refunds-escalation",
                      "account-closure-dispute"):
        assert kb.get(escalated).escalate


def test_refund_policy_facts_are_the_checker_anchors(kb: KnowledgeBase) -> None:
    assert "30 days" in kb.get("refunds-window").facts
    assert "14 days" in kb.get("refunds-annual").facts
    assert "$50" in kb.get("refunds-account-credit").facts


def test_round_trip_through_yaml(kb: KnowledgeBase, tmp_path: Path) -> None:
    records = [entry.model_dump(mode="json") for entry in kb.entries]
    reloaded = KnowledgeBase.load(_write(tmp_path, records))
    assert reloaded.entries == kb.entries
    assert reloaded.get("shipping-times") == kb.get("shipping-times")


def test_entries_are_immutable(kb: KnowledgeBase) -> None:
    entry = kb.get("refunds-window")
    with pytest.raises(ValueError):
        entry.answer = "anything"  # type: ignore[misc]
    assert isinstance(entry, KBEntry)


def test_get_unknown_id_names_it(kb: KnowledgeBase) -> None:
    with pytest.raises(KeyError, match="no-such-entry"):
        kb.get("no-such-entry")


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"category": "pets"}, "category"),
        ({"questions": []}, "questions"),
        ({"facts": ["$99"]}, "facts"),
        ({"escalate": "maybe"}, "escalate"),
        ({"id": "Bad Id"}, "id"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_invalid_entry_error_names_file_entry_and_field(tmp_path: Path, overrides: dict, field: str) -> None:
    path = _write(tmp_path, [_entry(id="billing-ok"), _entry(**overrides)])
    with pytest.raises(KnowledgeBaseError) as excinfo:
        KnowledgeBase.load(path)
    message = str(excinfo.value)
    assert str(path) in message
    assert "entry 1" in message
    assert f"'{field}" in message


def test_invalid_entry_error_names_the_line_of_the_field(tmp_path: Path) -> None:
    path = _write(tmp_path, [_entry(id="billing-ok"), _entry(category="pets")])
    line = path.read_text(encoding="utf-8").splitlines().index("  category: pets") + 1
    with pytest.raises(KnowledgeBaseError) as excinfo:
        KnowledgeBase.load(path)
    assert str(excinfo.value).startswith(f"{path}:{line}: entry 1 (id='billing-x'): field 'category': ")


def test_duplicate_ids_are_rejected(tmp_path: Path) -> None:
    expected = r"entry 1 \(id='billing-x'\): field 'id': duplicate of entry 0"
    with pytest.raises(KnowledgeBaseError, match=expected):
        KnowledgeBase.load(_write(tmp_path, [_entry(), _entry()]))


def test_missing_file_and_bad_shape_are_clear_errors(tmp_path: Path) -> None:
    missing = r"datasets\.knowledge_base: cannot read knowledge base: file not found"
    with pytest.raises(KnowledgeBaseError, match=missing):
        KnowledgeBase.load(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- just\n- a list\n", encoding="utf-8")
    with pytest.raises(KnowledgeBaseError, match="'entries' list"):
        KnowledgeBase.load(bad)
    with pytest.raises(KnowledgeBaseError, match="no entries"):
        KnowledgeBase.load(_write(tmp_path, []))


def test_every_kb_question_retrieves_its_own_entry(kb: KnowledgeBase) -> None:
    for entry in kb.entries:
        for question in entry.questions:
            top, score = kb.search(question, k=1)[0]
            assert top.id == entry.id, (question, top.id)
            assert score > 0.5


def test_held_out_paraphrases_hit_rate(kb: KnowledgeBase) -> None:
    assert set(HELD_OUT) == {entry.id for entry in kb.entries}
    total = top1 = top3 = 0
    for entry_id, paraphrases in HELD_OUT.items():
        for query in paraphrases:
            ids = [entry.id for entry, _ in kb.search(query, k=3)]
            total += 1
            top1 += ids[:1] == [entry_id]
            top3 += entry_id in ids
    assert top1 / total >= 0.80
    assert top3 / total >= 0.92


def test_search_results_are_ordered_and_bounded(kb: KnowledgeBase) -> None:
    hits = kb.search("how long does a refund take to reach my card", k=5)
    assert len(hits) == 5
    scores = [score for _, score in hits]
    assert scores == sorted(scores, reverse=True)
    assert all(0.0 < score <= 1.0 + 1e-9 for score in scores)
    assert hits[0][0].id == "refunds-processing-time"


def test_unrelated_or_empty_queries_return_nothing(kb: KnowledgeBase) -> None:
    assert kb.search("") == []
    assert kb.search("   ") == []
    assert kb.search("quantum chromodynamics lattice", k=3) == []
    assert kb.search("refund", k=0) == []
    assert kb.best("what's the weather in paris") is None
