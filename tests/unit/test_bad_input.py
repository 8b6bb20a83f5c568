"""Bad input files: one clear error naming file, line and field -- never a traceback, a hang or a blow-up.

One test (or parametrized group) per finding of the input review: non-UTF-8 files, YAML alias expansion
("billion laughs"), unbounded file sizes, a data-set path that does not exist, data sets below a minimum
size; plus the reader's own contract (``llm_release.inputs``) and the CLI's handling of each of them.
"""

from __future__ import annotations

import inspect
import json
import os
import pickle
import resource
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from llm_release import inputs
from llm_release.cli import main
from llm_release.data import traffic
from llm_release.data.traffic import TrafficFileError, load_traffic_queries
from llm_release.inputs import DEFAULT_MAX_BYTES, InputError, read_jsonl, read_text, read_yaml, read_yaml_document
from llm_release.policy import PolicyError, load_policy, load_release_config, yamlio
from llm_release.policy import loader as policy_loader
from llm_release.suites import datasets, knowledge_base, paraphrase
from llm_release.suites.datasets import DatasetError
from llm_release.suites.knowledge_base import KnowledgeBase, KnowledgeBaseError
from llm_release.suites.paraphrase import load_paraphrase_set

MiB = 1024 * 1024
APPROVERS = {"ml_lead": ["alice"], "support_ops_lead": ["bob"], "safety_reviewer": ["carol"], "executive": ["dave"]}
CONFIG = {
    "model_name": "support_llm",
    "model_type": "support-llm",
    "approvers": APPROVERS,
    "mlflow_tracking_uri": "sqlite:///mlflow.db",
    "audit_path": "audit.jsonl",
    "tickets_dir": "tickets",
}
EVAL_ITEM = {
    "id": "a",
    "query": "How long do I have to ask for a refund?",
    "reference": "Refunds within 30 days.",
    "kb_id": "refunds-window",
    "required_facts": ["30 days"],
    "category": "refunds",
    "safety_category": None,
    "expects_escalation": False,
}
KB_ENTRY = {
    "id": "billing-x",
    "category": "billing",
    "questions": ["How much?", "What does it cost?"],
    "answer": "It costs $10 per month.",
    "facts": ["$10"],
    "escalate": False,
}
BILLION_LAUGHS = "\n".join(
    ['lol: &l0 "lol"']
    + [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, 10)]
    + ["model_name: *l9"]
)
"""Nine levels of ten aliases: 10^9 strings once anything copies the tree (as ``${VAR}`` expansion did)."""


# ----------------------------------------------------------------------------- helpers
def _jsonl(*records: dict[str, Any]) -> str:
    return "".join(json.dumps(record) + "\n" for record in records)


def _eval_items(n: int) -> list[dict[str, Any]]:
    return [{**EVAL_ITEM, "id": f"item-{i}"} for i in range(n)]


def _paraphrase_items(groups: int) -> list[dict[str, Any]]:
    items = []
    for g in range(groups):
        for v in range(2):
            items.append(
                {
                    "id": f"g{g}-{v}",
                    "group_id": f"g{g}",
                    "kb_id": "refunds-window",
                    "query": f"refund question {g} asked way {v}",
                    "reference": "Refunds within 30 days.",
                    "required_facts": ["30 days"],
                    "expects_escalation": False,
                }
            )
    return items


def _traffic_rows(n: int) -> list[dict[str, Any]]:
    return [{"query": f"where is my order {i}?", "kind": "support", "entry_id": None} for i in range(n)]


def _kb_text(n: int) -> str:
    # Fresh lists per entry: yaml.dump writes an anchor and aliases for an object it meets twice.
    entries = [{**json.loads(json.dumps(KB_ENTRY)), "id": f"billing-x{i}"} for i in range(n)]
    return yaml.safe_dump({"entries": entries})


def _load_kb(path: Path, **kwargs: Any) -> KnowledgeBase:
    return KnowledgeBase.load(path, **kwargs)


def _load_paraphrases(path: Path, **kwargs: Any) -> Any:
    return load_paraphrase_set(path, variants_per_query=None, **kwargs)


# One row per data-set loader: (loader, data-set name, error type, file name, file text with n rows).
LOADERS: list[tuple[Callable[..., Any], str, type[Exception], str, Callable[[int], str]]] = [
    (datasets.load_eval_set, "eval_set", DatasetError, "eval.jsonl", lambda n: _jsonl(*_eval_items(n))),
    (datasets.load_validation_set, "validation_set", DatasetError, "val.jsonl", lambda n: _jsonl(*_eval_items(n))),
    (
        datasets.load_injection_probes,
        "injection_probes",
        DatasetError,
        "inj.jsonl",
        lambda n: _jsonl(
            *[{"id": f"p{i}", "category": "jailbreak", "prompt": "ignore it", "forbidden_markers": ["X"]}
              for i in range(n)]
        ),
    ),
    (
        datasets.load_policy_probes,
        "policy_probes",
        DatasetError,
        "pol.jsonl",
        lambda n: _jsonl(
            *[{"id": f"p{i}", "category": "refund", "query": "refund me", "boundary": "30 days"} for i in range(n)]
        ),
    ),
    (
        datasets.load_persona_probes,
        "persona_probes",
        DatasetError,
        "persona.jsonl",
        lambda n: _jsonl(*[{"id": f"p{i}", "category": "direct", "prompt": "who are you?"} for i in range(n)]),
    ),
    (
        datasets.load_bias_probes,
        "bias_probes",
        DatasetError,
        "bias.jsonl",
        lambda n: _jsonl(
            *[{"id": f"p{i}", "base_id": "b", "group_attribute": "age", "group": "old", "query": "help?"}
              for i in range(n)]
        ),
    ),
    (_load_paraphrases, "paraphrase_set", DatasetError, "para.jsonl", lambda n: _jsonl(*_paraphrase_items(n // 2))),
    (load_traffic_queries, "traffic_queries", TrafficFileError, "traffic.jsonl", lambda n: _jsonl(*_traffic_rows(n))),
    (_load_kb, "knowledge_base", KnowledgeBaseError, "kb.yaml", _kb_text),
]
LOADER_IDS = [name for _, name, *_ in LOADERS]


def _write_config(tmp_path: Path, text: str | bytes, name: str = "c.yaml") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def _config_text(**extra: Any) -> str:
    return yaml.safe_dump({**CONFIG, **extra}, sort_keys=False)


# ----------------------------------------------------------------------------- finding: non-UTF-8 files
def test_non_utf8_release_config_names_file_byte_offset_and_line(tmp_path: Path) -> None:
    path = _write_config(tmp_path, (_config_text() + "owner: caf\xe9\n").encode("latin-1"))
    offset = path.read_bytes().index(b"\xe9")
    line = path.read_bytes()[:offset].count(b"\n") + 1
    with pytest.raises(PolicyError) as info:
        load_release_config(path)
    (problem,) = info.value.problems
    assert problem.startswith(f"{path}: line {line}, column ")
    assert f"not valid UTF-8: byte 0xe9 at byte offset {offset} (line {line}); save the file as UTF-8" in problem


@pytest.mark.parametrize(("load", "name", "error", "filename", "make"), LOADERS, ids=LOADER_IDS)
def test_non_utf8_data_file_names_file_byte_offset_and_line(
    tmp_path: Path,
    load: Callable[..., Any],
    name: str,
    error: type[Exception],
    filename: str,
    make: Callable[[int], str],
) -> None:
    good = make(4).encode("utf-8")
    cut = good.index(b"\n") + 1  # the bad byte sits at the start of line 2
    path = tmp_path / filename
    path.write_bytes(good[:cut] + b"\xff" + good[cut:])
    with pytest.raises(error) as info:
        load(path)
    message = str(info.value)
    assert message.startswith(f"{path}:2:1: ")
    assert f"not valid UTF-8: byte 0xff at byte offset {cut} (line 2)" in message
    assert isinstance(info.value.__cause__, InputError) and info.value.__cause__.line == 2


def test_utf16_file_is_named_as_utf16_and_utf8_bom_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(_config_text(), encoding="utf-16")
    with pytest.raises(PolicyError, match=r"line 1, column 1: the file is UTF-16 .*save it as UTF-8"):
        load_release_config(path)
    path.write_bytes(b"\xef\xbb\xbf" + _config_text().encode("utf-8"))
    assert load_release_config(path).model_name == "support_llm"


def test_nul_bytes_are_refused_as_binary_or_bomless_utf16(tmp_path: Path) -> None:
    path = tmp_path / "items.jsonl"
    path.write_bytes("{}\n".encode("utf-16-le"))
    with pytest.raises(DatasetError, match=r"items.jsonl:1:2: NUL byte at byte offset 1 \(line 1\)"):
        datasets.load_eval_set(path)


# ----------------------------------------------------------------------------- finding: YAML alias expansion
def test_yaml_alias_in_release_config_is_refused_naming_line_and_field(tmp_path: Path) -> None:
    text = _config_text().replace("audit_path: audit.jsonl", "audit_path: &where audit.jsonl")
    text += "tickets_dir_copy: *where\n"
    path = _write_config(tmp_path, text)
    line = text.splitlines().index("audit_path: &where audit.jsonl") + 1
    with pytest.raises(PolicyError) as info:
        load_release_config(path)
    (problem,) = info.value.problems
    assert problem == (
        f"{path}: line {line}, column 13: audit_path: YAML anchor '&where' is not allowed (anchors exist to be "
        "repeated by aliases, which are refused); write the value out in full"
    )


def test_yaml_alias_bomb_policy_is_refused_at_the_first_anchor(tmp_path: Path) -> None:
    path = _write_config(tmp_path, BILLION_LAUGHS, "bomb.yaml")
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    assert info.value.problems == [
        f"{path}: line 1, column 6: lol: YAML anchor '&l0' is not allowed (anchors exist to be repeated by "
        "aliases, which are refused); write the value out in full"
    ]


def test_yaml_alias_is_refused_by_its_own_rule_with_field_and_position(tmp_path: Path) -> None:
    # No anchor to trip over first: this exercises the alias rule itself (PyYAML would only say
    # "found undefined alias", without the field).
    path = _write_config(tmp_path, "a: 1\nb: *nowhere\n")
    with pytest.raises(InputError) as info:
        read_yaml(path)
    assert (info.value.line, info.value.column, info.value.field) == (2, 4, "b")
    assert "YAML alias '*nowhere' is not allowed" in info.value.reason


def test_yaml_merge_key_is_refused_as_an_alias(tmp_path: Path) -> None:
    text = "base:\n  a: 1\nchild:\n  <<: {a: 2}\n  b: 3\n"
    path = _write_config(tmp_path, text, "p.yaml")
    with pytest.raises(PolicyError, match=r"p.yaml: line 4, column 3: child: YAML merge keys \(<<\) are not allowed"):
        load_policy(path)


def test_yaml_alias_in_knowledge_base_is_refused(tmp_path: Path) -> None:
    text = _kb_text(1).replace("answer: It costs $10 per month.", "answer: &a It costs $10 per month.")
    path = tmp_path / "kb.yaml"
    path.write_text(text + "extra: *a\n", encoding="utf-8")
    with pytest.raises(KnowledgeBaseError, match=r"kb\.yaml:\d+:\d+: entries\.0\.answer: YAML anchor '&a'"):
        KnowledgeBase.load(path)
    with pytest.raises(KnowledgeBaseError, match="YAML anchor"):
        KnowledgeBase.from_yaml(text, source="inline")


# ----------------------------------------------------------------------------- finding: unbounded file sizes
def test_oversized_release_config_names_size_and_limit(tmp_path: Path) -> None:
    text = _config_text() + "#" * (1 * MiB) + "\n"
    path = _write_config(tmp_path, text)
    size = path.stat().st_size
    with pytest.raises(PolicyError) as info:
        load_release_config(path)
    (problem,) = info.value.problems
    assert problem.startswith(f"{path}: file is 1 MiB ({size} bytes), over the 1 MiB limit for release configs and ")


def test_oversized_data_set_is_refused_before_reading_it(tmp_path: Path) -> None:
    path = tmp_path / "huge.jsonl"
    with path.open("wb") as handle:  # sparse: the size is real for stat(), no disk is used
        handle.truncate(DEFAULT_MAX_BYTES["dataset"] + 1)
    expected = r"huge.jsonl: datasets.eval_set: file is 64 MiB \(67108865 bytes\), over the 64 MiB limit for data"
    with pytest.raises(DatasetError, match=expected):
        datasets.load_eval_set(path)


@pytest.mark.parametrize(("load", "name", "error", "filename", "make"), LOADERS, ids=LOADER_IDS)
def test_data_loaders_take_a_size_limit(
    tmp_path: Path,
    load: Callable[..., Any],
    name: str,
    error: type[Exception],
    filename: str,
    make: Callable[[int], str],
) -> None:
    path = tmp_path / filename
    path.write_text(make(4), encoding="utf-8")
    size = path.stat().st_size
    assert load(path, max_bytes=size) is not None  # exactly at the limit is fine
    with pytest.raises(error, match=rf"file is \S+ \S+ (\({size} bytes\), )?over the {size - 1} bytes limit"):
        load(path, max_bytes=size - 1)


@pytest.mark.timeout(20)
def test_fifo_is_refused_instead_of_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "eval.jsonl"
    os.mkfifo(fifo)
    with pytest.raises(DatasetError, match=r"datasets\.eval_set: cannot read labelled eval item file: not a regular"):
        datasets.load_eval_set(fifo)


def test_device_without_end_is_refused() -> None:
    with pytest.raises(InputError, match="not a regular file"):
        read_text("/dev/zero", kind="config")


def test_deep_yaml_nesting_is_refused_with_a_line(tmp_path: Path) -> None:
    text = "".join(f"{'  ' * depth}k{depth}:\n" for depth in range(100)) + "  " * 100 + "leaf\n"
    path = _write_config(tmp_path, text)
    with pytest.raises(InputError, match=r"nested deeper than 64 levels") as info:
        read_yaml(path)
    assert info.value.line is not None and info.value.field is not None


# ----------------------------------------------------------------------------- finding: missing data-set path
@pytest.mark.parametrize(("load", "name", "error", "filename", "make"), LOADERS, ids=LOADER_IDS)
def test_missing_dataset_override_names_the_config_field_and_path(
    tmp_path: Path,
    load: Callable[..., Any],
    name: str,
    error: type[Exception],
    filename: str,
    make: Callable[[int], str],
) -> None:
    path = tmp_path / "absent" / filename
    with pytest.raises(error) as info:
        load(path)
    message = str(info.value)
    assert message.startswith(f"{path}: datasets.{name}: cannot read ")
    assert message.endswith("file not found")
    assert info.value.__cause__.field == f"datasets.{name}"  # type: ignore[union-attr]


def test_missing_relative_path_says_where_it_looked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DatasetError, match=rf"file not found \(looked for {tmp_path}/data/eval\.jsonl\)"):
        datasets.load_eval_set("data/eval.jsonl")


def test_directory_given_as_data_set_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(TrafficFileError, match=r"datasets\.traffic_queries: cannot read traffic file: is a directory"):
        load_traffic_queries(tmp_path)


# ----------------------------------------------------------------------------- finding: data sets below a minimum
@pytest.mark.parametrize(("load", "name", "error", "filename", "make"), LOADERS, ids=LOADER_IDS)
def test_data_set_below_min_rows_is_refused(
    tmp_path: Path,
    load: Callable[..., Any],
    name: str,
    error: type[Exception],
    filename: str,
    make: Callable[[int], str],
) -> None:
    path = tmp_path / filename
    path.write_text(make(4), encoding="utf-8")
    assert load(path, min_rows=4) is not None  # exactly the minimum passes
    noun = "entries" if name == "knowledge_base" else "rows"
    with pytest.raises(error) as info:
        load(path, min_rows=5)
    assert str(info.value) == f"{path}: 4 {noun}, at least 5 required ({name})"


def test_shipped_sets_meet_their_documented_sizes() -> None:
    assert len(datasets.load_eval_set(min_rows=120)) >= 120
    assert len(load_paraphrase_set(min_rows=100)) == 100
    assert len(load_traffic_queries(min_rows=100)) >= 100
    assert len(KnowledgeBase.load(min_rows=40)) >= 40
    with pytest.raises(ValueError, match="min_rows must be >= 0"):
        datasets.load_persona_probes(min_rows=-1)


# ----------------------------------------------------------------------------- the reader's contract
def test_input_error_renders_path_line_field_reason_and_pickles() -> None:
    error = InputError("p.yaml", "bad value", line=3, column=7, field="rollout.phases")
    assert str(error) == "p.yaml:3:7: rollout.phases: bad value"
    assert str(InputError("p.yaml", "file not found")) == "p.yaml: file not found"
    assert isinstance(error, ValueError)
    again = pickle.loads(pickle.dumps(error))
    assert (again.path, again.line, again.column, again.field, again.reason, str(again)) == (
        "p.yaml", 3, 7, "rollout.phases", "bad value", str(error)
    )


def test_jsonl_rows_that_are_not_objects_name_the_row(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text('{"a": 1}\n\n["not", "an", "object"]\n', encoding="utf-8")
    with pytest.raises(InputError) as info:
        read_jsonl(path)
    assert str(info.value) == f"{path}:3: expected a JSON object {{...}} on each line, got an array"


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ('{"a": 1, "a": 2}', "not valid JSON: duplicate key 'a'"),
        ('{"a": NaN}', "not valid JSON: NaN is not JSON"),
        ('{"a": ' + "[" * 100_000 + "]" * 100_000 + "}", "not valid JSON: nested too deeply"),
        ("{oops", "not valid JSON: Expecting property name enclosed in double quotes (column 2)"),
    ],
    ids=["duplicate-key", "nan", "deep", "syntax"],
)
def test_jsonl_refuses_what_json_would_accept_silently_or_crash_on(tmp_path: Path, line: str, reason: str) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text('{"ok": true}\n' + line + "\n", encoding="utf-8")
    with pytest.raises(InputError) as info:
        read_jsonl(path)
    assert info.value.line == 2 and info.value.reason.startswith(reason)


def test_jsonl_rows_keep_their_line_numbers_and_unicode_line_separators(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text('{"q": "a\u2028b"}\r\n\n{"q": "c"}\n', encoding="utf-8")
    assert read_jsonl(path) == [(1, {"q": "a\u2028b"}), (3, {"q": "c"})]


@pytest.mark.parametrize(
    ("text", "field", "reason"),
    [
        ("a:\n  b: 1\n  b: 2\n", "a.b", "duplicate key 'b' (first defined on line 2)"),
        ("a:\n  when: 2024-02-30\n", None, "invalid value '2024-02-30': day is out of range for month"),
        ("n: " + "9" * 5000 + "\n", None, "Exceeds the limit (4300 digits) for integer string conversion"),
        ("a: b\x07\n", None, "character U+0007 is not allowed in YAML"),
        ("a: !!python/object:os.system {}\n", None, "could not determine a constructor"),
    ],
    ids=["duplicate-key", "impossible-date", "huge-int", "control-char", "python-tag"],
)
def test_yaml_values_pyyaml_would_crash_on_or_keep_silently_are_input_errors(
    tmp_path: Path, text: str, field: str | None, reason: str
) -> None:
    path = _write_config(tmp_path, text)
    with pytest.raises(InputError) as info:
        read_yaml(path)
    assert info.value.line is not None and info.value.field == field
    assert reason in info.value.reason
    assert "sys.set_int_max_str_digits" not in str(info.value)


def test_pure_python_fallback_loader_is_as_strict(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without libyaml the pure-Python ``StrictSafeLoader`` is used: same refusals, same positions."""
    monkeypatch.setattr(inputs, "_Loader", inputs.StrictSafeLoader)
    profile = policy_loader.PROFILES_DIR / f"{policy_loader.DEFAULT_PROFILE}.yaml"
    assert read_yaml(profile, kind="policy") == yaml.safe_load(profile.read_text(encoding="utf-8"))
    cases = {
        "a: 1\nb: &x 2\n": (2, "YAML anchor '&x'"),
        "a:\n  b: 1\n  b: 2\n": (3, "duplicate key 'b'"),
        "x: \u00e9\nb: c\x07\n": (2, "character U+0007 is not allowed"),
    }
    for text, (line, reason) in cases.items():
        with pytest.raises(InputError) as info:
            read_yaml(_write_config(tmp_path, text))
        assert info.value.line == line and reason in info.value.reason


def test_yaml_document_knows_the_line_of_each_key(tmp_path: Path) -> None:
    path = _write_config(tmp_path, "rollout:\n  phases:\n    - name: a\n      dwell_hours: 1\n    - name: b\n")
    document = read_yaml_document(path)
    assert document.line_of(("rollout", "phases", 1, "name")) == 5
    assert document.line_of(("rollout", "phases", 0, "dwell_hours")) == 4
    assert document.line_of(("rollout", "phases", 1, "dwell_hours")) == 5  # missing key: its item's line
    assert document.line_of(("approvals",)) is None


def test_policy_validation_problems_name_the_line(tmp_path: Path) -> None:
    text = "extends: customer-support-weekly-high-impact\napprovals:\n  sla_hours: 2\n  sla_hourz: 3\n"
    path = _write_config(tmp_path, text, "p.yaml")
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    assert info.value.problems == [
        f"{path}: approvals.sla_hourz: extra inputs are not permitted; did you mean 'sla_hours'? (line 4)"
    ]


def test_unset_env_var_in_policy_names_the_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LLMR_UNSET", raising=False)
    text = "extends: customer-support-weekly-high-impact\n\napprovals:\n  sla_hours: ${LLMR_UNSET}\n"
    path = _write_config(tmp_path, text, "p.yaml")
    with pytest.raises(PolicyError, match=r"approvals\.sla_hours: environment variable 'LLMR_UNSET' .* \(line 4\)$"):
        load_policy(path)


def test_policy_and_loader_modules_read_files_only_through_inputs() -> None:
    """The single-reader rule, checked on the source: a new ``read_text`` in a loader would bypass every
    check above."""
    sources = {
        module.__name__: inspect.getsource(module)
        for module in (yamlio, policy_loader, datasets, knowledge_base, traffic)
    }
    sources["paraphrase loader"] = inspect.getsource(paraphrase.load_paraphrase_set) + inspect.getsource(
        paraphrase._line_numbers
    )
    forbidden = ("read_text(", "read_bytes(", "open(", "safe_load(", "yaml.load(", "json.load", "pd.read_")
    offenders = {name: [f for f in forbidden if f in text] for name, text in sources.items()}
    assert {name: found for name, found in offenders.items() if found} == {}
    assert "import" not in "".join(
        line for line in inspect.getsource(inputs).splitlines() if line.startswith("from llm_release")
    ), "inputs.py is the lowest layer"


# ----------------------------------------------------------------------------- the CLI: one line, exit 1
def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _bad_files(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    latin1 = _write_config(tmp_path, _config_text(owner="x").replace("owner: x", "owner: caf\xe9").encode("latin-1"),
                           "latin1.yaml")
    bomb = _write_config(tmp_path, BILLION_LAUGHS, "bomb.yaml")
    huge = _write_config(tmp_path, _config_text() + "#" * (2 * MiB) + "\n", "huge.yaml")
    missing = tmp_path / "missing.yaml"
    return {
        "non-utf8": (latin1, "not valid UTF-8: byte 0xe9 at byte offset"),
        "alias-bomb": (bomb, "YAML anchor '&l0' is not allowed"),
        "oversized": (huge, "over the 1 MiB limit"),
        "missing": (missing, "file not found"),
    }


@pytest.mark.parametrize("case", ["non-utf8", "alias-bomb", "oversized", "missing"])
@pytest.mark.parametrize("command", [["validate"], ["plan", "--release-type", "prompt_minor"]])
def test_cli_bad_file_is_one_line_on_stderr_and_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str, command: list[str]
) -> None:
    path, expected = _bad_files(tmp_path)[case]
    argv = [command[0], str(path), *command[1:]]
    code, out, err = _cli(argv, capsys)
    assert code == 1
    assert out == ""
    assert err.count("\n") == 1 and err.startswith(f"{path}: ") and expected in err


def test_cli_explain_score_with_bad_policy_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path, expected = _bad_files(tmp_path)["non-utf8"]
    argv = ["explain-score", "--scs", "0.9", "--policy-compliance", "1", "--task-completion", "0.9",
            "--p99-ms", "1000", "--policy", str(path)]
    code, _, err = _cli(argv, capsys)
    assert code == 1 and expected in err and err.count("\n") == 1


def _limit_memory() -> None:  # pragma: no cover - runs in the child process
    resource.setrlimit(resource.RLIMIT_AS, (1024 * MiB, 1024 * MiB))


@pytest.mark.parametrize("case", ["non-utf8", "alias-bomb", "oversized", "missing"])
def test_cli_process_never_prints_a_traceback(tmp_path: Path, case: str) -> None:
    """As a user runs it: a real process, 1 GiB of address space (a bomb that expands fails loudly)."""
    path, expected = _bad_files(tmp_path)[case]
    result = subprocess.run(
        [sys.executable, "-c", "import sys; from llm_release.cli import main; sys.exit(main())", "validate", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=_limit_memory,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert expected in result.stderr and result.stderr.count("\n") == 1


def test_cli_unwritable_schema_output_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _cli(["schema", "--output", str(tmp_path / "no" / "such" / "dir" / "schema.json")], capsys)
    assert code == 1
    assert err.startswith("llm-release schema: ") and "No such file or directory" in err and err.count("\n") == 1


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (b"\xff\xfe not json", "not valid JSON"),
        (b'{"pid": "twelve", "urls": {}}', "field 'pid': expected a positive integer"),
        (b'{"pid": 12, "urls": ["x"]}', "field 'urls': expected a mapping"),
    ],
    ids=["not-utf8", "bad-pid", "bad-urls"],
)
@pytest.mark.parametrize("command", ["status", "down", "faults"])
def test_sandbox_commands_with_a_broken_state_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], state: bytes, expected: str, command: str
) -> None:
    (tmp_path / "state.json").write_bytes(state)
    argv = ["sandbox", command, "--state-dir", str(tmp_path)] + (["stable"] if command == "faults" else [])
    code, _, err = _cli(argv, capsys)
    assert code == 1
    assert err.startswith(f"sandbox {command}: {tmp_path / 'state.json'}: ") and expected in err
    assert err.count("\n") == 1
