"""How the cohort compiler refuses what it does not support: UnsupportedCohortConstruct names the Circe
construct and where it is in the definition; only_keys refuses any key outside a supported set."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rwe_assets.errors import ConfigError


class UnsupportedCohortConstruct(ConfigError):
    """A cohort definition uses a Circe construct outside the supported subset. Names the construct
    and where it is in the definition."""

    def __init__(self, where: str, construct: str):
        self.where = where
        self.construct = construct
        super().__init__(f"cohort definition: {construct} at {where} is not supported by this compiler")


def empty(value: Any) -> bool:
    return value is None or value is False or value == [] or value == {} or value == ""


def only_keys(obj: Mapping, allowed: set[str], where: str) -> None:
    """Refuse any key outside `allowed` that carries a value (Circe writes defaults such as
    "ConditionTypeExclude": false or "CensoringCriteria": [], which change nothing)."""
    for key, value in obj.items():
        if key not in allowed and not empty(value):
            raise UnsupportedCohortConstruct(where, key)
