"""Claim judge: grounding, claims, the shipped model's hash check, the generator, and the issue's failure modes."""

from __future__ import annotations

import hashlib
import json
import re

import numpy as np
import pytest

from llm_release.data.perturb import generate, rows_sha256
from llm_release.suites.claim_model import ClaimModelError, load_claim_model
from llm_release.suites.claims import split_claims
from llm_release.suites.grounding import Grounder
from llm_release.suites.knowledge_base import KnowledgeBase, default_knowledge_base
from llm_release.suites.numbers import parse_quantities, same_quantity


class FakeEmbedder:
    """Bag-of-words hashing embedder: deterministic, instant, enough to rank by shared words."""

    model_id = "fake-bow"

    def embed(self, texts):
        out = np.zeros((len(texts), 256), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"[a-z]+", text.lower()):
                if len(word) > 3:
                    out[row, int(hashlib.md5(word.encode()).hexdigest(), 16) % 256] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms > 0, norms, 1.0)


@pytest.fixture(scope="module")
def kb():
    return default_knowledge_base()


@pytest.fixture(scope="module")
def fake_grounder(kb, tmp_path_factory):
    return Grounder(kb, embedder=FakeEmbedder(), cache=tmp_path_factory.mktemp("cache"), floor=0.3)


def test_grounding_picks_the_entry_query_and_response_both_point_to(fake_grounder):
    g = fake_grounder.ground("How much does the Pro plan cost per user?",
                             "The Pro plan costs $25 per user per month; prices exclude taxes.")
    assert g.how == "query+response" and g.chosen.id == "billing-plan-prices"
    assert [s for _, s in g.entries] == sorted((s for _, s in g.entries), reverse=True)


def test_no_entry_matches_is_none(fake_grounder):
    g = fake_grounder.ground("Is the sky red?", "Yes, it is.")  # no word the fake embedder sees
    assert g.how == "none" and g.chosen is None


def test_label_pins_the_entry(fake_grounder):
    assert fake_grounder.ground("anything", "", kb_id="refunds-window").how == "label"


def test_grounder_caches_on_disk(kb, tmp_path):
    calls = []

    class Counting(FakeEmbedder):
        def embed(self, texts):
            calls.append(len(texts))
            return super().embed(texts)

    first = Grounder(kb, embedder=Counting(), cache=tmp_path)
    assert first.cache_path is not None and first.cache_path.is_file()
    Grounder(kb, embedder=Counting(), cache=tmp_path)
    assert len(calls) == 1  # the second grounder read the vectors from disk


def test_split_claims_drops_pleasantries_and_splits_clauses():
    claims = split_claims("Happy to help! Refunds take 5-10 business days, and we email you when it is sent. "
                          "Thanks for reaching out.")
    assert claims == ["Refunds take 5-10 business days", "we email you when it is sent."]


def test_24_7_is_not_two_numbers():
    quantities = parse_quantities("Our team answers 24/7.")
    assert [q.kind for q in quantities] == ["availability"]


def test_thirty_days_equals_30_days():
    assert same_quantity(parse_quantities("thirty days")[0], parse_quantities("30 days")[0])


def test_generator_is_deterministic(kb):
    a, b = generate(kb, seed=0), generate(kb, seed=0)
    assert rows_sha256(a) == rows_sha256(b)
    assert {r.label for r in a} == {"supported", "contradicted", "unsupported"}
    assert rows_sha256(generate(kb, seed=1)) != rows_sha256(a)


def test_model_hash_check_refuses_a_tampered_file(tmp_path):
    model = load_claim_model()
    cv = model.manifest["cv_calibration_train"]["answer_level_at_threshold"]
    assert cv["live"]["n_hallucinated"] > 0 and cv["live"]["halluc_fpr"] <= 0.05
    assert model.manifest["calibration_train_sha256"] and model.trees and model.generic_words
    from importlib import resources
    source = resources.files("llm_release.data").joinpath("models/claim_judge.json")
    document = json.loads(source.read_text(encoding="utf-8"))
    document["params"]["threshold"] = 0.99
    tampered = tmp_path / "claim_judge.json"
    tampered.write_text(json.dumps(document))
    with pytest.raises(ClaimModelError, match="params_sha256"):
        load_claim_model(tampered)
    with pytest.raises(ClaimModelError, match="not found"):
        load_claim_model(tmp_path / "missing.json")


# ------------------------------------------------------------------ real MiniLM (slower: loads the model once)
@pytest.fixture(scope="module")
def judge(kb):
    from llm_release.suites.claim_judge import ClaimJudge

    return ClaimJudge(kb)


@pytest.mark.minilm
def test_correct_paraphrase_of_the_right_entry_is_supported(judge):
    v = judge.judge("How long do I have to get a refund?",
                    "You can get a refund on monthly subscriptions and store purchases within thirty days of "
                    "purchase. After that, refunds aren't offered, but you can cancel any time.")
    assert v.grounding_kb_id == "refunds-window" and v.correct and not v.hallucinated
    assert all(c.label == "supported" for c in v.claims)


@pytest.mark.minilm
def test_non_numeric_invented_claim_is_unsupported(judge):
    v = judge.judge("How long do refunds take?", "Approved refunds reach your original payment method in 5-10 "
                    "business days. A dedicated account manager will also review your refund personally.")
    assert v.hallucinated and v.claims[-1].label == "unsupported"


@pytest.mark.minilm
def test_swapped_plan_prices_are_contradicted(judge):
    v = judge.judge("How much is the Pro plan?",
                    "The Pro plan costs $45 per user per month and Business is $25 per user per month.")
    assert v.hallucinated and any(c.label == "contradicted" for c in v.claims)


@pytest.mark.minilm
@pytest.mark.xfail(strict=True, reason="known miss of the shipped model: on real support wording negation is "
                   "no reliable signal (correct answers negate freely), so a bare negated fact scores below the "
                   "answer-level threshold chosen by CV on the calibration train split (see the branch report)")
def test_we_dont_accept_paypal_is_contradicted(judge):
    v = judge.judge("Can I pay with PayPal?", "We don't accept PayPal.")
    assert v.hallucinated and v.claims[0].label == "contradicted"


@pytest.mark.minilm
def test_no_entry_matches_gives_a_behaviour_verdict(judge):
    v = judge.judge("What's the weather in Paris tomorrow?", "I'll connect you with a support agent who can help.")
    assert v.grounding_how == "none" and v.expected_escalation is True and v.correct


@pytest.mark.minilm
def test_judge_many_matches_judge(judge, kb):
    items = [{"query": e.questions[0], "response": e.answer} for e in kb.entries[:5]]
    assert [j.correct for j in judge.judge_many(items)] == [judge.judge(**i).correct for i in items]


def test_boosted_trees_in_numpy_match_sklearn():
    from sklearn.ensemble import GradientBoostingClassifier

    from llm_release.data.train_claim_judge import export_trees
    from llm_release.suites.claim_model import ClaimModel
    from llm_release.suites.claims import FEATURE_NAMES

    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, len(FEATURE_NAMES)))
    y = (x[:, 0] + 0.5 * x[:, 3] > 0.2)
    gbm = GradientBoostingClassifier(n_estimators=20, max_depth=3, random_state=0).fit(x, y)
    exported = export_trees(gbm, x)
    from llm_release.suites.claim_model import _tree
    model = ClaimModel(("contradicted", "supported", "unsupported"), np.zeros((3, len(FEATURE_NAMES))), np.zeros(3),
                       np.zeros(len(FEATURE_NAMES)), np.ones(len(FEATURE_NAMES)), 1.0, 0.0, 0.5, {},
                       tuple(_tree(t, "test", n) for n, t in enumerate(exported["trees"])),
                       exported["tree_init"], exported["tree_rate"])
    assert np.allclose(model.tree_raw(x), gbm.decision_function(x), atol=1e-9)


def test_span_marks_the_faulty_claim_and_support_speak_is_learned(kb):
    from llm_release.data.train_claim_judge import span_in_claim

    assert span_in_claim("Apple Pay is supported at checkout too", "Apple Pay is supported at checkout too.")
    assert not span_in_claim("Apple Pay is supported at checkout too", "We accept Visa and Mastercard on all plans")


def test_polarity_margin_and_agent_action_features():
    from llm_release.suites.claims import build_evidence, claim_features

    vectors = np.eye(3, dtype=np.float32)
    evidence = build_evidence(["We accept PayPal."], ["We accept PayPal.", "We do not ship to PO boxes."], vectors[:2])
    features, best = claim_features("We don't accept PayPal.", vectors[0], evidence)
    assert best == "We accept PayPal." and features["polarity_margin"] < 0
    features, _ = claim_features("I've added a $20 credit to your account.", vectors[2], evidence)
    assert features["agent_action"] == 1.0 and features["qty_unsupported"] == 1.0


def test_kb_from_records_is_enough_for_the_fake_grounder():
    kb = KnowledgeBase.from_records([{"id": "a", "category": "billing", "questions": ["price of pro"],
                                      "answer": "Pro costs $25 per month."}])
    assert Grounder(kb, embedder=FakeEmbedder(), cache=False).ground("pro price", "").chosen.id == "a"
