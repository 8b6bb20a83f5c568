"""Version names ``{type}-{YYYY}-W{WW}-{n}-{stage}`` (spec section 8) with ISO year and week.

The ISO year matters: 2027-01-01 belongs to 2026-W53, so naming by calendar year would create a
second "W53" in the wrong year and break ordering and ``next_increment``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date

from pydantic import BaseModel, ConfigDict

from llm_release.policy import VersioningPolicy

_DEFAULT = VersioningPolicy()
_TYPE = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")


class VersionName(BaseModel):
    model_config = ConfigDict(frozen=True)

    model_type: str
    iso_year: int
    iso_week: int
    increment: int
    stage: str
    """Stage key (development ... production, rejected, rolled_back)."""
    suffix: str

    def with_stage(self, stage: str, naming: VersioningPolicy | None = None) -> str:
        return _format(
            self.model_type, self.iso_year, self.iso_week, self.increment, stage, naming or _DEFAULT
        )


def _suffix(stage: str, naming: VersioningPolicy) -> str:
    if stage in naming.stage_suffixes:
        return naming.stage_suffixes[stage]
    if stage in naming.stage_suffixes.values():
        return stage
    raise ValueError(f"unknown stage {stage!r}; valid: {sorted(naming.stage_suffixes)}")


def _format(
    model_type: str, year: int, week: int, increment: int, stage: str, naming: VersioningPolicy
) -> str:
    if not _TYPE.match(model_type):
        raise ValueError(
            f"model_type {model_type!r} must be lowercase words joined by '-', e.g. 'support-llm'"
        )
    if isinstance(increment, bool) or not isinstance(increment, int) or increment < 1:
        raise ValueError(f"increment must be a positive integer, got {increment!r}")
    return naming.template.format(
        type=model_type, year=year, week=week, increment=increment, stage=_suffix(stage, naming)
    )


def version_name(
    model_type: str, when: date, increment: int, stage: str, naming: VersioningPolicy | None = None
) -> str:
    """``support-llm-2025-W22-3-prod``; ``stage`` is a stage key (``production``) or a suffix (``prod``)."""
    iso = when.isocalendar()
    return _format(model_type, iso.year, iso.week, increment, stage, naming or _DEFAULT)


_PLACEHOLDERS = {
    "type": r"(?P<type>[a-z][a-z0-9]*(?:-[a-z0-9]+)*?)",
    "year": r"(?P<year>\d{4})",
    "week": r"(?P<week>\d{2})",
    "increment": r"(?P<inc>[1-9]\d*)",
    "stage": r"(?P<suffix>[A-Za-z0-9]+)",
}
_FIELD = re.compile(r"\{(\w+)(?::[^}]*)?\}")


def _pattern(naming: VersioningPolicy) -> re.Pattern[str]:
    """The regular expression of names made by ``naming.template`` (so a user's template parses back)."""
    parts: list[str] = []
    position = 0
    for match in _FIELD.finditer(naming.template):
        parts.append(re.escape(naming.template[position : match.start()]))
        parts.append(_PLACEHOLDERS[match.group(1)])
        position = match.end()
    parts.append(re.escape(naming.template[position:]))
    return re.compile("^" + "".join(parts) + "$")


def parse_version_name(name: str, naming: VersioningPolicy | None = None) -> VersionName:
    """Inverse of ``version_name`` under the same naming settings; raises ``ValueError`` naming what is wrong."""
    naming = naming or _DEFAULT
    match = _pattern(naming).match(name)
    if not match:
        example = _format("support-llm", 2025, 22, 3, "production", naming)
        raise ValueError(f"{name!r} is not a version name like {example!r}")
    year, week = int(match["year"]), int(match["week"])
    try:
        date.fromisocalendar(year, week, 1)
    except ValueError:
        raise ValueError(f"{name!r}: ISO year {year} has no week {week}") from None
    by_suffix = {v: k for k, v in naming.stage_suffixes.items()}
    suffix = match["suffix"]
    if suffix not in by_suffix:
        raise ValueError(f"{name!r}: unknown stage suffix {suffix!r}; valid: {sorted(by_suffix)}")
    return VersionName(
        model_type=match["type"],
        iso_year=year,
        iso_week=week,
        increment=int(match["inc"]),
        stage=by_suffix[suffix],
        suffix=suffix,
    )


def next_increment(
    existing_names: Iterable[str], model_type: str, when: date, naming: VersioningPolicy | None = None
) -> int:
    """1 + the highest increment already used by ``model_type`` in ``when``'s ISO week (any stage).

    Names that do not parse (other conventions, other tools) are ignored.
    """
    iso = when.isocalendar()
    highest = 0
    for name in existing_names:
        try:
            parsed = parse_version_name(name, naming)
        except ValueError:
            continue
        if parsed.model_type == model_type and (parsed.iso_year, parsed.iso_week) == (iso.year, iso.week):
            highest = max(highest, parsed.increment)
    return highest + 1


def release_id_of(name: str, naming: VersioningPolicy | None = None) -> str:
    """The release id: a version name without its stage suffix (``support-llm-2025-W22-3``).

    One release keeps one id through all its stages; its version names differ only by the suffix.
    """
    parsed = parse_version_name(name, naming)
    return f"{parsed.model_type}-{parsed.iso_year:04d}-W{parsed.iso_week:02d}-{parsed.increment}"


def rejected_tag(when: date, version: str, template: str = "REJECTED-{date}-{version}") -> str:
    """Registry tag for a rejected release (spec section 4): ``REJECTED-<date>-<version>``.

    ``version`` is the release id (``support-llm-2025-W22-3``), not a stage-suffixed name; ``template``
    is the policy's ``decision_engine.rejection.registry_tag_template``.
    """
    return template.format(date=when.isoformat(), version=version)
