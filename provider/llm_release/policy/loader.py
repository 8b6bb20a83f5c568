"""Loading release policies: shipped profiles, policy files with ``extends:``, JSON schema export."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from llm_release.policy.errors import LineOf, PolicyError, suggestion, validation_problems
from llm_release.policy.release_policy import ReleasePolicy
from llm_release.policy.yamlio import deep_merge, expand_env, read_yaml_mapping_document

PROFILES_DIR = Path(__file__).parent / "profiles"
DEFAULT_PROFILE = "customer-support-weekly-high-impact"


def available_profiles() -> list[str]:
    """Names of the profiles shipped with the package."""
    return sorted(p.stem for p in PROFILES_DIR.glob("*.yaml"))


def _is_path_like(source: str | Path) -> bool:
    text = str(source)
    return isinstance(source, Path) or text.endswith((".yaml", ".yml")) or "/" in text or "\\" in text


def _profile_path(name: str, label: str) -> Path:
    path = PROFILES_DIR / f"{name}.yaml"
    if not path.is_file():
        names = available_profiles()
        raise PolicyError(
            [
                f"{label}: extends: unknown profile {name!r}{suggestion(name, names)} "
                f"(available: {', '.join(names)})"
            ]
        )
    return path


def resolve_policy_document(
    source: str | Path, *, _chain: tuple[Path, ...] = ()
) -> tuple[dict[str, Any], str]:
    """Read a profile name or policy file into one merged mapping (``extends`` applied, env expanded).

    Returns the mapping and the label (file path) errors should name.
    """
    data, label, _ = _resolve(source, _chain)
    return data, label


def _resolve(source: str | Path, chain: tuple[Path, ...]) -> tuple[dict[str, Any], str, LineOf]:
    """``resolve_policy_document`` plus the line lookup of the file itself (not of the files it extends:
    a problem is reported against this file, so only its own lines are meaningful)."""
    path = Path(source) if _is_path_like(source) else _profile_path(str(source), "policy")
    path = path.resolve() if path.exists() else path
    label = str(path if _is_path_like(source) else source)
    if path in chain:
        cycle = " -> ".join(str(p) for p in (*chain, path))
        raise PolicyError([f"{label}: extends: cycle {cycle}"])
    document = read_yaml_mapping_document(path, kind="policy")
    line_of = document.line_of
    data = expand_env(document.data, label, line_of=line_of)
    parent = data.pop("extends", None)
    if parent is None:
        return data, label, line_of
    if not isinstance(parent, str) or not parent:
        raise PolicyError([f"{label}: extends: expected a profile name or a path, got {parent!r}"])
    if _is_path_like(parent):
        parent_source: str | Path = path.parent / parent
    else:
        _profile_path(parent, label)
        parent_source = parent
    base, _, _ = _resolve(parent_source, (*chain, path))
    return deep_merge(base, data, label, line_of=line_of), label, line_of


def validate_policy_mapping(
    data: dict[str, Any], label: str, prefix: tuple[Any, ...] = (), line_of: LineOf | None = None
) -> ReleasePolicy:
    """Validate a merged mapping as a ``ReleasePolicy``; errors name ``label``, the dotted path and, with
    ``line_of``, the line of the key in the file."""
    try:
        return ReleasePolicy.model_validate(data)
    except ValidationError as exc:
        raise PolicyError(validation_problems(exc, label, ReleasePolicy, prefix, line_of)) from None


def load_policy(source: str | Path) -> ReleasePolicy:
    """Load a shipped profile by name, or a policy YAML file (which may say ``extends: <profile>``)."""
    if not _is_path_like(source) and not (PROFILES_DIR / f"{source}.yaml").is_file():
        names = available_profiles()
        raise PolicyError(
            [
                f"{source}: unknown policy profile{suggestion(str(source), names)} "
                f"(available: {', '.join(names)}; or give a path to a .yaml file)"
            ]
        )
    data, label, line_of = _resolve(source, ())
    return validate_policy_mapping(data, label, line_of=line_of)


def policy_json_schema() -> dict[str, Any]:
    """JSON schema of ``ReleasePolicy`` (for editors and documentation)."""
    schema = ReleasePolicy.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema.setdefault("title", "ReleasePolicy")
    return schema
