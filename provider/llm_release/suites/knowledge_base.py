"""The customer-support knowledge base: the ground truth that answers are judged against.

The judge grounds a response in the entry retrieved for its query and the sandbox bot answers from
the same entries, so both sides agree on what "correct" means. Retrieval is TF-IDF cosine
(scikit-learn) rather than embeddings: it loads in milliseconds, needs no model files and is
deterministic, which keeps evaluations reproducible.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator
from sklearn.feature_extraction.text import TfidfVectorizer

from llm_release.inputs import InputError, parse_yaml, read_yaml_document, row_count_problem

Category = Literal[
    "billing", "refunds", "shipping", "account", "security", "technical", "legal", "escalation"
]
CATEGORIES: tuple[str, ...] = get_args(Category)

DEFAULT_KB_RESOURCE = "knowledge_base.yaml"


class KnowledgeBaseError(ValueError):
    """A knowledge-base file is missing, unreadable, too big, not UTF-8, not (strict) YAML, too small or
    has an invalid entry (message names which); a reader error is chained as ``__cause__``."""


class KBEntry(BaseModel):
    """One support intent with its approved answer.

    ``facts`` are literal strings that must appear in a correct answer; the loader checks that each
    one occurs in ``answer`` so a typo in the data cannot make every answer look wrong.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    id: str = Field(min_length=1, pattern=r"^[a-z0-9][a-z0-9-]*$")
    category: Category
    questions: tuple[str, ...] = Field(min_length=1)
    answer: str = Field(min_length=1)
    facts: tuple[str, ...] = ()
    escalate: bool = False

    @field_validator("questions", "facts")
    @classmethod
    def _no_blank_items(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        cleaned = tuple(item.strip() for item in value)
        for position, item in enumerate(cleaned):
            if not item:
                raise ValueError(f"item {position} is blank")
        return cleaned

    @field_validator("facts")
    @classmethod
    def _facts_in_answer(cls, facts: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        answer = str(info.data.get("answer", "")).lower()
        missing = [fact for fact in facts if fact.lower() not in answer]
        if missing:
            raise ValueError(f"facts not found in answer: {missing}")
        return facts


LineOf = Callable[[Sequence[Any]], "int | None"]
"""Line of a key path in the KB file (``YamlDocument.line_of``), None when unknown."""


def _where(source: str, line_of: LineOf | None, loc: Sequence[Any]) -> str:
    line = line_of(loc) if line_of is not None else None
    return source if line is None else f"{source}:{line}"


def _format_validation_error(
    source: str, index: int, entry_id: Any, exc: ValidationError, line_of: LineOf | None = None
) -> str:
    problems = []
    for err in exc.errors():
        loc = ".".join(str(part) for part in err["loc"]) or "<entry>"
        problems.append(f"field '{loc}': {err['msg']}")
    first = exc.errors()[0]["loc"] if exc.errors() else ()
    label = f"entry {index}" + (f" (id={entry_id!r})" if entry_id is not None else "")
    return f"{_where(source, line_of, ('entries', index, *first))}: {label}: " + "; ".join(problems)


class KnowledgeBase:
    """Validated KB entries plus a TF-IDF index built once at construction.

    Each question and each answer is indexed as its own document and an entry scores the best
    cosine over its documents: a short customer query then matches the closest paraphrase instead
    of being diluted by the average of all of them.
    """

    def __init__(self, entries: Sequence[KBEntry], source: str = "<memory>") -> None:
        if not entries:
            raise KnowledgeBaseError(f"{source}: the knowledge base has no entries")
        seen: dict[str, int] = {}
        for index, entry in enumerate(entries):
            if entry.id in seen:
                raise KnowledgeBaseError(
                    f"{source}: entry {index} (id={entry.id!r}): field 'id': "
                    f"duplicate of entry {seen[entry.id]}"
                )
            seen[entry.id] = index
        self.entries: list[KBEntry] = list(entries)
        self.source = source
        self._by_id = {entry.id: entry for entry in self.entries}
        documents: list[str] = []
        owners: list[int] = []
        for index, entry in enumerate(self.entries):
            for text in (*entry.questions, entry.answer):
                documents.append(text)
                owners.append(index)
        self._owners = np.asarray(owners)
        self._vectorizer = TfidfVectorizer(
            stop_words="english",
            ngram_range=(1, 2),
            sublinear_tf=True,
            strip_accents="unicode",
        )
        self._matrix = self._vectorizer.fit_transform(documents)

    # ----------------------------------------------------------------- loading
    @classmethod
    def load(
        cls,
        path: str | Path | None = None,
        *,
        min_rows: int | None = None,
        max_bytes: int | None = None,
    ) -> KnowledgeBase:
        """Load and validate a KB YAML file (default: the shipped ``data/knowledge_base.yaml``).

        The file goes through ``llm_release.inputs`` (size limit, strict UTF-8, no YAML aliases or
        duplicate keys). A path given here is a caller's override, named ``datasets.knowledge_base`` in
        a "not found" error; ``min_rows`` refuses a KB with fewer entries.
        """
        if path is None:
            source = str(resources.files("llm_release.data").joinpath(DEFAULT_KB_RESOURCE))
            what, field = "the shipped knowledge base", None
        else:
            source, what, field = str(path), "knowledge base", "datasets.knowledge_base"
        try:
            document = read_yaml_document(source, kind="knowledge_base", max_bytes=max_bytes, field=field, what=what)
        except InputError as exc:
            raise KnowledgeBaseError(str(exc)) from exc
        kb = cls._from_document(document.data, source, document.line_of)
        problem = row_count_problem(source, len(kb), min_rows, "knowledge_base", noun="entries")
        if problem:
            raise KnowledgeBaseError(problem)
        return kb

    @classmethod
    def from_yaml(cls, text: str, source: str = "<string>") -> KnowledgeBase:
        """Validate KB YAML given as text (same strict parsing as ``load``)."""
        try:
            document = parse_yaml(text, source)
        except InputError as exc:
            raise KnowledgeBaseError(str(exc)) from exc
        return cls._from_document(document.data, source, document.line_of)

    @classmethod
    def _from_document(cls, document: Any, source: str, line_of: LineOf) -> KnowledgeBase:
        if not isinstance(document, dict) or not isinstance(document.get("entries"), list):
            raise KnowledgeBaseError(f"{source}: expected a mapping with an 'entries' list at the top level")
        return cls.from_records(document["entries"], source=source, line_of=line_of)

    @classmethod
    def from_records(
        cls, records: Iterable[Any], source: str = "<records>", line_of: LineOf | None = None
    ) -> KnowledgeBase:
        """Validate entry mappings; with ``line_of`` (from the parsed file) errors name the line too."""
        entries: list[KBEntry] = []
        first_index: dict[str, int] = {}
        for index, record in enumerate(records):
            if not isinstance(record, dict):
                raise KnowledgeBaseError(
                    f"{_where(source, line_of, ('entries', index))}: entry {index}: expected a mapping, "
                    f"got {type(record).__name__}"
                )
            try:
                entry = KBEntry.model_validate(record)
            except ValidationError as exc:
                message = _format_validation_error(source, index, record.get("id"), exc, line_of)
                raise KnowledgeBaseError(message) from exc
            if entry.id in first_index:  # __init__ checks too; here the line is known
                raise KnowledgeBaseError(
                    f"{_where(source, line_of, ('entries', index, 'id'))}: entry {index} (id={entry.id!r}): "
                    f"field 'id': duplicate of entry {first_index[entry.id]}"
                )
            first_index[entry.id] = index
            entries.append(entry)
        return cls(entries, source=source)

    # ----------------------------------------------------------------- queries
    def __len__(self) -> int:
        return len(self.entries)

    def get(self, entry_id: str) -> KBEntry:
        """Return the entry with this id; ``KeyError`` naming the id if there is none."""
        try:
            return self._by_id[entry_id]
        except KeyError:
            raise KeyError(f"no knowledge-base entry with id {entry_id!r}") from None

    def search(self, query: str, k: int = 3) -> list[tuple[KBEntry, float]]:
        """The ``k`` best entries for ``query`` with their cosine score (0..1), best first.

        Entries with score 0 (no shared vocabulary) are left out, so an unrelated query returns [].
        """
        if k <= 0 or not query or not query.strip():
            return []
        query_vector = self._vectorizer.transform([query])
        if query_vector.nnz == 0:
            return []
        # Rows are L2-normalised by TfidfVectorizer, so the dot product is the cosine.
        doc_scores = (self._matrix @ query_vector.T).toarray().ravel()
        entry_scores = np.zeros(len(self.entries))
        np.maximum.at(entry_scores, self._owners, doc_scores)
        order = np.argsort(-entry_scores, kind="stable")[:k]
        return [(self.entries[i], float(entry_scores[i])) for i in order if entry_scores[i] > 0.0]

    def best(self, query: str) -> tuple[KBEntry, float] | None:
        """The single best entry for ``query`` or None when nothing shares vocabulary with it."""
        hits = self.search(query, k=1)
        return hits[0] if hits else None


_DEFAULT: KnowledgeBase | None = None


def default_knowledge_base() -> KnowledgeBase:
    """The shipped KB, loaded once per process (search is cheap, loading/fitting is not free)."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = KnowledgeBase.load()
    return _DEFAULT
