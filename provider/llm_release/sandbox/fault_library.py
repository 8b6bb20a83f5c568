"""The sandbox's fault library: how a correct answer is turned into a wrong or out-of-policy one.

Every fault kind is a function from (entry, correct answer text) to the list of every text it can
produce; the bot picks one by hash, and ``all_outputs`` lets ``bot.producible_sentences`` enumerate
the lot. Kinds (issue 6):

* ``fabrication``: a claim the KB never makes, without numbers, woven in after a sentence or appended.
* ``contradiction``: the sentence carrying a key fact replaced by a hand-written opposite that keeps
  the key words (negation, swapped prices, the wrong plan or method).
* ``wrong_number``: one of the entry's numbers changed, in digits or spelled out.
* ``omission``: a key fact dropped (an item of a list, or the sentence that states it).
* ``policy_violation``: an out-of-policy sentence of one of the 8 policy categories, in plain words.
* ``persona_slip``: a claim to be a person inside an ordinary answer.
* ``persona_failure`` / ``injection_compliance``: whole answers to identity probes and injections.

The texts live in ``fault_texts.yaml``; they were written for the sandbox without reading the judge, the
policy checker or the calibration data.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass

from llm_release.sandbox.numwords import find_numbers, number_values, spell
from llm_release.sandbox.phrasings import PhrasingsError, read_resource, text_list
from llm_release.suites.knowledge_base import CATEGORIES, KBEntry

RESOURCE = "fault_texts.yaml"
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'$])")


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text`` (split after . ! ? followed by a space and a capital, digit or quote)."""
    return [part.strip() for part in _SENTENCE_END.split(" ".join(text.split())) if part.strip()]


def join_sentences(sentences: Sequence[str]) -> str:
    return " ".join(sentences)


def choose(options: Sequence[str], u: float) -> str:
    """The option a uniform ``u`` in [0, 1) picks."""
    return options[min(int(u * len(options)), len(options) - 1)]


@dataclass(frozen=True)
class Contradiction:
    fact: str
    texts: tuple[str, ...]


@dataclass(frozen=True)
class FaultTexts:
    fabrication: dict[str, tuple[str, ...]]
    contradiction: dict[str, Contradiction]
    policy_violation: dict[str, tuple[str, ...]]
    persona_slip: tuple[str, ...]
    persona_failure: tuple[str, ...]
    injection_compliance: tuple[str, ...]


@functools.lru_cache(maxsize=1)
def load_fault_texts() -> FaultTexts:
    from llm_release.sandbox.faults import VIOLATION_CATEGORIES

    source, data = read_resource(RESOURCE)
    keys = {"fabrication", "contradiction", "policy_violation", "persona_slip", "persona_failure",
            "injection_compliance"}
    if not isinstance(data, dict) or set(data) != keys:
        raise PhrasingsError(f"{source}: expected exactly the top-level keys {sorted(keys)}")
    fabrication = {str(k): text_list(source, f"fabrication.{k}", v) for k, v in data["fabrication"].items()}
    unknown = sorted(set(fabrication) - {*CATEGORIES, "any"})
    if unknown:
        raise PhrasingsError(f"{source}: fabrication: unknown KB categories {unknown}")
    contradiction = {}
    for entry_id, spec in data["contradiction"].items():
        if not isinstance(spec, dict) or set(spec) != {"fact", "texts"} or not isinstance(spec["fact"], str):
            raise PhrasingsError(f"{source}: contradiction.{entry_id}: expected {{fact: <text>, texts: [...]}}")
        texts = text_list(source, f"contradiction.{entry_id}.texts", spec["texts"])
        contradiction[str(entry_id)] = Contradiction(spec["fact"], texts)
    violations = {
        str(k): text_list(source, f"policy_violation.{k}", v, 2) for k, v in data["policy_violation"].items()
    }
    if set(violations) != set(VIOLATION_CATEGORIES):
        raise PhrasingsError(f"{source}: policy_violation: expected the categories {list(VIOLATION_CATEGORIES)}")
    return FaultTexts(
        fabrication,
        contradiction,
        violations,
        text_list(source, "persona_slip", data["persona_slip"], 2),
        text_list(source, "persona_failure", data["persona_failure"], 2),
        text_list(source, "injection_compliance", data["injection_compliance"], 2),
    )


# ---------------------------------------------------------------------------------------------- helpers
def _insertions(text: str, sentences: Sequence[str]) -> list[str]:
    """``text`` with one of ``sentences`` woven in after its first sentence or appended at the end."""
    parts = split_sentences(text)
    out = []
    for sentence in sentences:
        out.append(join_sentences([*parts, sentence]))
        if len(parts) > 1:
            out.append(join_sentences([parts[0], sentence, *parts[1:]]))
    return out


def fact_values(entry: KBEntry) -> set[float]:
    """Numbers stated by the entry's facts."""
    return {value for fact in entry.facts for value in number_values(fact)}


def _states(sentence: str, fact: str) -> bool:
    """Whether ``sentence`` states ``fact``: literally, or (a numeric fact) with all its numbers."""
    if fact.lower() in sentence.lower():
        return True
    values = number_values(fact)
    return bool(values) and values <= number_values(sentence)


# ---------------------------------------------------------------------------------------------- kinds
def fabrication_outputs(entry: KBEntry, text: str) -> list[str]:
    texts = load_fault_texts()
    claims = (*texts.fabrication.get(entry.category, ()), *texts.fabrication.get("any", ()))
    return _insertions(text, claims)


def contradiction_outputs(entry: KBEntry, text: str) -> list[str]:
    """The answer with the sentence stating the contradicted fact (else the first) replaced."""
    spec = load_fault_texts().contradiction.get(entry.id)
    if spec is None:
        return []
    parts = split_sentences(text)
    index = next((i for i, part in enumerate(parts) if _states(part, spec.fact)), 0)
    return [join_sentences([*parts[:index], opposite, *parts[index + 1:]]) for opposite in spec.texts]


def _other_values(value: float, avoid: set[float]) -> list[float]:
    """Two plausible wrong values for ``value`` that are not among ``avoid``."""
    if value != int(value):  # 6.95 -> 6.45 / 5.95, 99.9 -> 99.4 / 98.9
        step = 10.0 ** -len(f"{value:g}".split(".")[1])
        options = [value - 5 * step if value - 5 * step > 0 else value + 5 * step,
                   value - 1 if value > 1 else value + 1]
        options = [round(option, 6) for option in options]
    else:
        whole = int(value)
        options = [whole * 2 if whole < 1000 else whole + 200, max(1, whole // 2) if whole > 2 else whole + 3]
    out: list[float] = []
    for option in options:
        while option in avoid or option == value or option in out:
            option = option + 1
        out.append(option)
    return out


def _render(value: float, original: str, spelled: bool) -> str:
    """``value`` written the way ``original`` was (digits with its $ / % / thousands comma / cents, or words)."""
    if spelled and value == int(value) and value <= 9999:
        return spell(int(value))
    if value == int(value):
        body = f"{int(value):,}" if "," in original else str(int(value))
        if original.startswith("$") and "." in original:
            body += "." + "0" * len(original.split(".")[1].rstrip("%"))
    else:
        body = f"{value:g}"
    return ("$" if original.startswith("$") else "") + body + ("%" if original.endswith("%") else "")


def _spelled_variant(value: float, original: str) -> str | None:
    """``value`` in words for a plain, dollar or percent number up to 100 (else None)."""
    if value != int(value) or not 0 < value <= 100:
        return None
    words = spell(int(value))
    if original.startswith("$"):
        return f"{words} dollars"
    if original.endswith("%"):
        return f"{words} percent"
    return words


def wrong_number_outputs(entry: KBEntry, text: str) -> list[str]:
    """Every text with one number of the entry's facts changed, in its own form or spelled out."""
    values = fact_values(entry)
    out: list[str] = []
    for token in find_numbers(text):
        if token.value not in values:
            continue
        before, after = text[: token.start], text[token.end:]
        glued = bool(before) and (before[-1].isalpha() or before[-1] == "-")  # AES-256, ISO 27001 stays digits
        for other in _other_values(token.value, values):
            forms = {_render(other, token.text, token.spelled)}
            spelled = _spelled_variant(other, token.text)
            if spelled and not token.spelled and not glued:
                forms.add(spelled)
            out.extend(before + form + after for form in sorted(forms))
    return out


def _missing_facts(entry: KBEntry, text: str) -> list[str]:
    return [fact for fact in entry.facts if not _states(text, fact)]


def omission_outputs(entry: KBEntry, text: str) -> list[str]:
    """Every text with one key fact dropped: a list item ("Visa, Mastercard and PayPal") or its sentence.

    Some fact must remain (an entry with a single fact has no omission: without it there is no answer).
    """
    out: list[str] = []
    for fact in entry.facts:
        pattern = re.escape(fact)
        for drop in (rf",\s*{pattern}(?=[\s,])", rf"{pattern},\s*", rf"\s+(?:and|or)\s+{pattern}\b"):
            shorter = re.sub(drop, "", text, count=1)
            kept = len(_missing_facts(entry, shorter)) < len(entry.facts)
            if shorter != text and _missing_facts(entry, shorter) and kept and shorter not in out:
                out.append(shorter)
    parts = split_sentences(text)
    if len(parts) > 1:
        for index in range(len(parts)):
            shorter = join_sentences(parts[:index] + parts[index + 1:])
            # something of the answer must remain: dropping every fact is a non-answer, not an omission
            kept = len(_missing_facts(entry, shorter)) < len(entry.facts)
            if _missing_facts(entry, shorter) and kept and not _missing_facts(entry, text) and shorter not in out:
                out.append(shorter)
    return out


def policy_violation_outputs(text: str, categories: Sequence[str]) -> list[str]:
    """``text`` with an out-of-policy sentence of one of ``categories``, woven in or appended."""
    violations = load_fault_texts().policy_violation
    return _insertions(text, [sentence for category in categories for sentence in violations[category]])


def persona_slip_outputs(text: str) -> list[str]:
    return _insertions(text, load_fault_texts().persona_slip)


def injection_compliance_texts(system_prompt: str) -> tuple[str, ...]:
    return tuple(text.replace("{system_prompt}", system_prompt) for text in load_fault_texts().injection_compliance)


CONTENT_FAULTS = {
    "omission": omission_outputs,
    "wrong_number": wrong_number_outputs,
    "contradiction": contradiction_outputs,
    "fabrication": fabrication_outputs,
}
"""Faults that change what an entry's answer says, in the order the bot applies them."""
