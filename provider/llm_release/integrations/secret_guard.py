"""Refuse to persist things that look like credentials.

The audit trail, ticket bodies and MLflow artifacts are kept for 24 months and read by many people;
secrets belong in Airflow connections only. Stores call :func:`assert_no_secrets` before writing so a
caller that accidentally passes a token gets a clear error instead of a leaked credential.

Key matching works on words (``auth_token`` -> ``auth``, ``token``) so ordinary LLM vocabulary such as
``max_tokens`` or ``completion_tokens`` (plural) is not refused.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from itertools import pairwise
from typing import Any

_SECRET_WORDS = frozenset(
    {
        "password",
        "passwd",
        "secret",
        "authorization",
        "token",
        "apikey",
        "credential",
        "credentials",
        "cookie",
    }
)
_SECRET_PAIRS = frozenset(
    {("api", "key"), ("private", "key"), ("access", "key"), ("secret", "key"), ("client", "secret")}
)
_BEARER = re.compile(r"^\s*(bearer|basic)\s+[A-Za-z0-9._~+/=-]{6,}\s*$", re.IGNORECASE)


class SecretLeakError(ValueError):
    """A payload about to be persisted contains a key or value that looks like a credential."""


def _words(key: str) -> list[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", key)
    return [w for w in re.split(r"[^A-Za-z0-9]+", spaced.lower()) if w]


def key_looks_secret(key: str) -> bool:
    """True when a mapping key names a credential (``api_key``, ``X-Auth-Token``, ``password``...)."""
    words = _words(key)
    if any(w in _SECRET_WORDS for w in words):
        return True
    return any((a, b) in _SECRET_PAIRS for a, b in pairwise(words))


def find_secrets(obj: Any, path: str = "$") -> list[str]:
    """Paths (``$.a.b[2]``) of keys that look secret, or string values that look like auth headers."""
    found: list[str] = []
    if isinstance(obj, Mapping):
        for key, value in obj.items():
            child = f"{path}.{key}"
            if isinstance(key, str) and key_looks_secret(key):
                found.append(child)
            else:
                found.extend(find_secrets(value, child))
    elif isinstance(obj, list | tuple):
        for i, value in enumerate(obj):
            found.extend(find_secrets(value, f"{path}[{i}]"))
    elif isinstance(obj, str) and _BEARER.match(obj):
        found.append(path)
    return found


def assert_no_secrets(obj: Any, what: str) -> None:
    """Raise :class:`SecretLeakError` naming every offending path in ``obj`` (described as ``what``)."""
    found = find_secrets(obj)
    if found:
        raise SecretLeakError(
            f"{what} looks like it contains credentials at {', '.join(found)}; secrets must stay in Airflow "
            "connections and are never written to the audit trail, tickets or MLflow"
        )
