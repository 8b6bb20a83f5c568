"""The one reader of every file a person hands the project: release configs, policies, data sets, the
knowledge base and traffic recordings.

A file that is missing, huge, in the wrong encoding or cleverly built must stop a release with one
sentence naming the file (and the line and field) -- not with a traceback, a hang or a machine out of
memory. Every check lives here once, so a loader cannot forget one:

* the file exists and is a regular file (a FIFO or ``/dev/zero`` would block or never end);
* its size is bounded per kind of file (``DEFAULT_MAX_BYTES``), and at most that many bytes are read;
* the bytes are UTF-8 (a leading BOM is accepted); otherwise the error names the byte offset and line;
* YAML anchors, aliases and merge keys are refused: an alias is a reference, and any code that copies
  the data (``${VAR}`` expansion, deep merges, validation, JSON dumps) turns a few hundred bytes of
  nested aliases into gigabytes (the "billion laughs" file). Without them the parsed data is at most
  linear in the file size, which the size limit bounds. Nesting depth is bounded too;
* duplicate keys are refused (YAML and JSON both keep the last one silently, which hides an edit).

Lowest layer: the standard library and PyYAML only, nothing else from ``llm_release``, so the policy
package (imported at DAG-parse time) and the light sandbox process can both use it.
"""

from __future__ import annotations

import codecs
import json
import os
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, NamedTuple

import yaml
from yaml.composer import Composer, ComposerError
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import Resolver

__all__ = [
    "DEFAULT_MAX_BYTES",
    "MAX_NESTING",
    "InputError",
    "InputKind",
    "JsonlRow",
    "StrictSafeLoader",
    "YamlDocument",
    "decode_utf8",
    "parse_yaml",
    "read_bytes",
    "read_jsonl",
    "read_text",
    "read_yaml",
    "read_yaml_document",
    "row_count_problem",
]

MiB = 1024 * 1024

InputKind = Literal["config", "policy", "knowledge_base", "dataset", "traffic"]

DEFAULT_MAX_BYTES: Mapping[str, int] = MappingProxyType(
    {
        "config": 1 * MiB,
        "policy": 1 * MiB,
        "knowledge_base": 8 * MiB,
        "dataset": 64 * MiB,
        "traffic": 64 * MiB,
    }
)
"""Largest file accepted per kind. Shipped files are 100x below these; a config of a megabyte is the
wrong file, and a data set the suites would take hours to run through is a mistake, not an input."""

_KIND_NAMES: Mapping[str, str] = MappingProxyType(
    {
        "config": "release configs and policy files",
        "policy": "release configs and policy files",
        "knowledge_base": "knowledge bases",
        "dataset": "data sets",
        "traffic": "traffic recordings",
    }
)

MAX_NESTING = 64
"""Deepest YAML nesting accepted. Policies nest about 6 levels; ``[[[[...`` a million deep would
otherwise end in ``RecursionError`` inside the parser or in whatever walks the data afterwards."""


class InputError(ValueError):
    """A file the project was given cannot be used; ``str()`` is ``path:line[:column]: field: reason``.

    ``path`` is the file, ``line``/``column`` (1-based) where in it, ``field`` the key path inside it or,
    for a file that could not be opened, the setting that named it (e.g. ``datasets.eval_set``), and
    ``reason`` what is wrong in words meant for the person who wrote the file.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        reason: str,
        *,
        line: int | None = None,
        column: int | None = None,
        field: str | None = None,
    ) -> None:
        self.path = os.fspath(path)
        self.reason = reason
        self.line = line
        self.column = column if line is not None else None
        self.field = field or None
        super().__init__(self._render())

    def _render(self) -> str:
        where = self.path
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return f"{where}: {self.field}: {self.reason}" if self.field else f"{where}: {self.reason}"

    def __str__(self) -> str:
        return self._render()

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only arguments do not survive the default exception pickling (Airflow ships task
        # exceptions between processes), so rebuild from the attributes.
        return (_rebuild_input_error, (type(self), self.path, self.reason, self.line, self.column, self.field))


def _rebuild_input_error(
    cls: type[InputError], path: str, reason: str, line: int | None, column: int | None, field: str | None
) -> InputError:
    return cls(path, reason, line=line, column=column, field=field)


# ----------------------------------------------------------------------------- bytes and text
def _limit(kind: str, max_bytes: int | None) -> int:
    if kind not in DEFAULT_MAX_BYTES:
        raise ValueError(f"unknown input kind {kind!r}; known: {', '.join(DEFAULT_MAX_BYTES)}")
    limit = DEFAULT_MAX_BYTES[kind] if max_bytes is None else max_bytes
    if limit < 0:
        raise ValueError(f"max_bytes must be >= 0, got {limit}")
    return limit


def _size(n: int) -> str:
    if n >= MiB:
        return f"{n / MiB:.1f} MiB".replace(".0 MiB", " MiB")
    if n >= 1024:
        return f"{n / 1024:.1f} KiB".replace(".0 KiB", " KiB")
    return f"{n} bytes"


def _cannot(what: str | None, reason: str) -> str:
    return f"cannot read {what}: {reason}" if what else reason


def _too_big(size: int, limit: int, kind: str) -> str:
    exact = f" ({size} bytes)" if size >= 1024 else ""
    return (
        f"file is {_size(size)}{exact}, over the {_size(limit)} limit for {_KIND_NAMES[kind]}; "
        "is it the right file? (callers can raise the limit with max_bytes)"
    )


def read_bytes(
    path: str | os.PathLike[str],
    *,
    kind: InputKind = "dataset",
    max_bytes: int | None = None,
    field: str | None = None,
    what: str | None = None,
) -> bytes:
    """The file's bytes, after checking it exists, is a regular file and is within the size limit.

    ``field`` names the setting that pointed at the file (it appears in "not found" errors); ``what``
    says what the file is for ("paraphrase set"), for the same errors.
    """
    limit = _limit(kind, max_bytes)
    source = Path(path)
    try:
        info = source.stat()
    except (FileNotFoundError, NotADirectoryError):
        looked = "" if source.is_absolute() else f" (looked for {Path.cwd() / source})"
        raise InputError(source, _cannot(what, f"file not found{looked}"), field=field) from None
    except OSError as exc:
        raise InputError(source, _cannot(what, exc.strerror or str(exc)), field=field) from None
    if stat.S_ISDIR(info.st_mode):
        raise InputError(source, _cannot(what, "is a directory, expected a file"), field=field)
    if not stat.S_ISREG(info.st_mode):
        raise InputError(source, _cannot(what, "not a regular file (a device, pipe or socket)"), field=field)
    if info.st_size > limit:
        raise InputError(source, _too_big(info.st_size, limit, kind), field=field)
    try:
        with source.open("rb") as handle:
            data = handle.read(limit + 1)  # the file may have grown since stat(): never read past the limit
    except OSError as exc:
        raise InputError(source, _cannot(what, exc.strerror or str(exc)), field=field) from None
    if len(data) > limit:
        raise InputError(source, _too_big(len(data), limit, kind), field=field)
    return data


def _line_and_column(data: bytes, offset: int) -> tuple[int, int]:
    line_start = data.rfind(b"\n", 0, offset) + 1
    return data.count(b"\n", 0, offset) + 1, offset - line_start + 1


def decode_utf8(data: bytes, path: str | os.PathLike[str], *, field: str | None = None) -> str:
    """Strict UTF-8 (a leading BOM is dropped); the error names the first bad byte's offset and line.

    NUL bytes are refused as well: valid UTF-8, but the mark of a binary file or of UTF-16 text saved
    without a byte order mark, which would otherwise surface later as a baffling parse error. ``field``
    goes into the error as is (``read_text`` passes none: see there).
    """
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE, codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        width = "32" if data.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)) else "16"
        raise InputError(
            path,
            f"the file is UTF-{width} (it starts with a UTF-{width} byte order mark); save it as UTF-8",
            line=1,
            column=1,
            field=field,
        )
    skip = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        text = data[skip:].decode("utf-8")
    except UnicodeDecodeError as exc:
        offset = exc.start + skip
        line, column = _line_and_column(data, offset)
        raise InputError(
            path,
            f"not valid UTF-8: byte 0x{data[offset]:02x} at byte offset {offset} (line {line}); save the file as UTF-8",
            line=line,
            column=column,
            field=field,
        ) from None
    nul = data.find(b"\x00")
    if nul >= 0:
        line, column = _line_and_column(data, nul)
        raise InputError(
            path,
            f"NUL byte at byte offset {nul} (line {line}): a binary file, or UTF-16 text without a byte "
            "order mark? save it as UTF-8 text",
            line=line,
            column=column,
            field=field,
        )
    return text


def read_text(
    path: str | os.PathLike[str],
    *,
    kind: InputKind = "dataset",
    max_bytes: int | None = None,
    field: str | None = None,
    what: str | None = None,
) -> str:
    """``read_bytes`` then strict UTF-8 decoding; every failure is an ``InputError``."""
    # ``field`` names the setting that pointed here: it helps when the file cannot be found or is too big,
    # but next to a line number it would read as a key inside this file, so decoding errors go without it.
    return decode_utf8(read_bytes(path, kind=kind, max_bytes=max_bytes, field=field, what=what), path)


def row_count_problem(
    path: str | os.PathLike[str], count: int, min_rows: int | None, name: str, noun: str = "rows"
) -> str | None:
    """The message for a data set below its minimum size, or None when it is big enough.

    Shared by the data loaders so the wording is the same everywhere:
    ``<file>: N rows, at least M required (<data set name>)``. Too small a sample cannot support the
    rates computed from it, so a loader refuses it instead of letting a gate pass on three items.
    """
    if min_rows is None:
        return None
    if min_rows < 0:
        raise ValueError(f"min_rows must be >= 0, got {min_rows}")
    if count >= min_rows:
        return None
    return f"{os.fspath(path)}: {count} {noun}, at least {min_rows} required ({name})"


# ----------------------------------------------------------------------------- YAML
_MERGE_TAG = "tag:yaml.org,2002:merge"


class _Refused(ComposerError):
    """A construct the strict loader refuses (alias, anchor, merge key, duplicate key, deep nesting)."""

    def __init__(self, problem: str, mark: Any, field_path: tuple[str, ...]) -> None:
        super().__init__(None, None, problem, mark)
        self.field_path = field_path


class _StrictComposer(Composer):
    """Composer that refuses aliases, anchors, merge keys and duplicate keys, bounds nesting, and
    records the line of every key path as it goes (cheap: one dict entry per key)."""

    def _init_strict(self) -> None:
        self.key_lines: dict[tuple[str, ...], int] = {}
        self._path: list[str] = []
        self._depth = 0
        self._keys_seen: dict[int, dict[Any, int]] = {}

    def _refuse(self, problem: str, mark: Any, segment: str | None = None) -> _Refused:
        path = (*self._path, segment) if segment is not None else tuple(self._path)
        return _Refused(problem, mark, path)

    def _segment(self, parent: Node | None, index: Any) -> str | None:
        """The key path segment of the node about to be composed (None for keys and the root)."""
        if isinstance(parent, SequenceNode):
            return str(index)
        if not isinstance(parent, MappingNode) or index is None:
            return None
        key_node: Node = index
        if key_node.tag == _MERGE_TAG:
            raise self._refuse(
                "YAML merge keys (<<) are not allowed: they copy another mapping in; write the keys out",
                key_node.start_mark,
            )
        if not isinstance(key_node, ScalarNode):
            return "?"
        key = self.construct_object(key_node)  # type: ignore[attr-defined]  # the loader mixes in a constructor
        seen = self._keys_seen.setdefault(id(parent), {})
        line = key_node.start_mark.line + 1
        try:
            first = seen.get(key)
        except TypeError:  # unhashable key: the constructor reports it
            return str(key_node.value)
        if first is not None:
            raise self._refuse(
                f"duplicate key {key!r} (first defined on line {first}); YAML would silently keep only the last one",
                key_node.start_mark,
                str(key_node.value),
            )
        seen[key] = line
        return str(key_node.value)

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        if self.check_event(yaml.AliasEvent):  # type: ignore[attr-defined]
            event = self.peek_event()  # type: ignore[attr-defined]
            raise self._refuse(
                f"YAML alias '*{event.anchor}' is not allowed: aliases let a small file expand to an enormous "
                "one; write the value out in full",
                event.start_mark,
                self._segment(parent, index),
            )
        segment = self._segment(parent, index)
        event = self.peek_event()  # type: ignore[attr-defined]
        if getattr(event, "anchor", None) is not None:
            raise self._refuse(
                f"YAML anchor '&{event.anchor}' is not allowed (anchors exist to be repeated by aliases, which "
                "are refused); write the value out in full",
                event.start_mark,
                segment,
            )
        if self._depth >= MAX_NESTING:
            raise self._refuse(f"nested deeper than {MAX_NESTING} levels", event.start_mark, segment)
        if segment is not None:
            self._path.append(segment)
            mark = index.start_mark if isinstance(parent, MappingNode) else event.start_mark
            self.key_lines[tuple(self._path)] = mark.line + 1
        self._depth += 1
        try:
            node: Node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
            if segment is not None:
                self._path.pop()
        if isinstance(node, MappingNode):
            self._keys_seen.pop(id(node), None)
        return node


class _ValueCheckingConstructor(SafeConstructor):
    """SafeConstructor whose scalar conversions fail as YAML errors with a position.

    PyYAML lets ``ValueError`` escape for an impossible date (``2024-02-30``) or an integer of more than
    4300 digits; that would be a traceback without a line.
    """

    def construct_object(self, node: Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, OverflowError) as exc:
            shown = node.value if isinstance(node, ScalarNode) else node.tag
            if isinstance(shown, str) and len(shown) > 40:
                shown = shown[:37] + "..."
            # Python's own advice ("use sys.set_int_max_str_digits()") is not for the author of the file.
            reason = str(exc).split("; use sys.", 1)[0]
            raise ConstructorError(None, None, f"invalid value {shown!r}: {reason}", node.start_mark) from None


class StrictSafeLoader(_StrictComposer, _ValueCheckingConstructor, yaml.SafeLoader):
    """``yaml.SafeLoader`` (pure Python) with the strict composer: the fallback without libyaml."""

    def __init__(self, stream: str) -> None:
        yaml.SafeLoader.__init__(self, stream)
        self._init_strict()


_CParser: type | None = getattr(getattr(yaml, "cyaml", None), "CParser", None) if yaml.__with_libyaml__ else None

if _CParser is not None:

    class _FastStrictLoader(_StrictComposer, _CParser, _ValueCheckingConstructor, Resolver):  # type: ignore[misc,valid-type]
        """libyaml's C scanner/parser under the Python strict composer: parsing a policy is most of a
        DAG file's parse time, and the C parser keeps it about 5x faster than the pure-Python one."""

        c_parser = True

        def __init__(self, stream: str) -> None:
            _CParser.__init__(self, stream)  # type: ignore[misc]
            Composer.__init__(self)
            _ValueCheckingConstructor.__init__(self)
            Resolver.__init__(self)
            self._init_strict()

    _Loader: type = _FastStrictLoader
else:  # pragma: no cover - PyYAML built without libyaml
    _Loader = StrictSafeLoader


@dataclass(frozen=True)
class YamlDocument:
    """Parsed YAML as plain Python data plus the line of every key path (for error messages)."""

    data: Any
    key_lines: Mapping[tuple[str, ...], int]

    def line_of(self, loc: Iterable[Any]) -> int | None:
        """Line of the key at ``loc`` (e.g. ``("rollout", "phases", 2)``), else of its nearest ancestor
        that is in the file; None when not even the top-level key is (e.g. a missing required field)."""
        parts = tuple(str(part) for part in loc)
        for end in range(len(parts), 0, -1):
            line = self.key_lines.get(parts[:end])
            if line is not None:
                return line
        return None


def _reader_error(exc: yaml.reader.ReaderError, text: str, source: str, c_parser: bool) -> InputError:
    # libyaml reports a byte offset into the UTF-8 text, the Python reader a character index.
    prefix = text.encode("utf-8")[: exc.position].decode("utf-8", "replace") if c_parser else text[: exc.position]
    line = prefix.count("\n") + 1
    column = len(prefix) - (prefix.rfind("\n") + 1) + 1
    character = exc.character if isinstance(exc.character, int) else ord(str(exc.character)[:1] or "?")
    return InputError(
        source, f"character U+{character:04X} is not allowed in YAML ({exc.reason})", line=line, column=column
    )


def parse_yaml(text: str, source: str | os.PathLike[str], *, field: str | None = None) -> YamlDocument:
    """Parse one YAML document strictly (see the module docstring); errors name ``source`` and the line.

    ``field`` is used for errors that have no key path of their own (syntax errors).
    """
    label = os.fspath(source)
    loader = None
    try:
        loader = _Loader(text)  # the pure-Python reader already checks characters here
        node = loader.get_single_node()
        data = None if node is None else loader.construct_document(node)
        key_lines = MappingProxyType(dict(loader.key_lines))
    except _Refused as exc:
        mark = exc.problem_mark
        path = ".".join(exc.field_path) or field
        raise InputError(label, str(exc.problem), line=mark.line + 1, column=mark.column + 1, field=path) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = " ".join(part for part in (exc.context, exc.problem) if part)
        # A constructor error is a well-formed document with a value PyYAML cannot build (bad date, tag).
        reason = what if isinstance(exc, ConstructorError) else f"YAML syntax error: {what}"
        if mark is None:
            raise InputError(label, reason, field=field) from None
        raise InputError(label, reason, line=mark.line + 1, column=mark.column + 1, field=field) from None
    except yaml.reader.ReaderError as exc:
        raise _reader_error(exc, text, label, getattr(_Loader, "c_parser", False)) from None
    except yaml.YAMLError as exc:
        raise InputError(label, f"YAML error: {exc}", field=field) from None
    except RecursionError:
        raise InputError(label, "YAML nested too deeply to parse", field=field) from None
    finally:
        if loader is not None:
            loader.dispose()
    return YamlDocument(data, key_lines)


def read_yaml_document(
    path: str | os.PathLike[str],
    *,
    kind: InputKind = "config",
    max_bytes: int | None = None,
    field: str | None = None,
    what: str | None = None,
) -> YamlDocument:
    """Read and strictly parse a YAML file; the result also knows the line of every key."""
    return parse_yaml(read_text(path, kind=kind, max_bytes=max_bytes, field=field, what=what), path, field=field)


def read_yaml(
    path: str | os.PathLike[str],
    *,
    kind: InputKind = "config",
    max_bytes: int | None = None,
    field: str | None = None,
    what: str | None = None,
) -> Any:
    """Read and strictly parse a YAML file into plain Python data (None for an empty file)."""
    return read_yaml_document(path, kind=kind, max_bytes=max_bytes, field=field, what=what).data


# ----------------------------------------------------------------------------- JSON lines
class JsonlRow(NamedTuple):
    """One JSON object of a JSONL file and the line it is on (blank lines count, as in an editor)."""

    line: int
    data: dict[str, Any]


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    record: dict[str, Any] = {}
    for key, value in pairs:
        if key in record:
            raise ValueError(f"duplicate key {key!r} (JSON would silently keep only the last one)")
        record[key] = value
    return record


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON (write a number, or null for no value)")


def read_jsonl(
    path: str | os.PathLike[str],
    *,
    kind: InputKind = "dataset",
    max_bytes: int | None = None,
    field: str | None = None,
    what: str | None = None,
) -> list[JsonlRow]:
    """Every non-blank line of a JSONL file as a JSON object, with its line number.

    A line that is not JSON, is not an object, repeats a key, uses ``NaN``/``Infinity`` or nests too
    deeply for the parser is an ``InputError`` naming the file and the line. Lines are split on ``\\n``
    only: U+2028 and friends are legal inside JSON strings and must not split a row.
    """
    text = read_text(path, kind=kind, max_bytes=max_bytes, field=field, what=what)
    label = os.fspath(path)
    rows: list[JsonlRow] = []
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.removesuffix("\r")
        if not line.strip():
            continue
        try:
            value = json.loads(line, object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constant)
        except json.JSONDecodeError as exc:
            raise InputError(label, f"not valid JSON: {exc.msg} (column {exc.colno})", line=number) from None
        except RecursionError:
            raise InputError(label, "not valid JSON: nested too deeply to parse", line=number) from None
        except ValueError as exc:
            raise InputError(label, f"not valid JSON: {exc}", line=number) from None
        if not isinstance(value, dict):
            kind_name = {list: "an array", str: "a string", bool: "true/false", type(None): "null"}.get(
                type(value), "a number"
            )
            raise InputError(label, f"expected a JSON object {{...}} on each line, got {kind_name}", line=number)
        rows.append(JsonlRow(number, value))
    return rows
