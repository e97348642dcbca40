"""Configuration problems: what cannot start, with the file or variable, key and reason.

Every part that finds a problem in configuration (the settings loader, a connector's
settings or credentials, the plug-in registry) raises `ConfigError`; the CLI prints one
line per problem and exits 2. Messages never include a value.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["ConfigError", "ConfigProblem"]


@dataclass(frozen=True)
class ConfigProblem:
    source: str
    key: str
    reason: str

    def __str__(self) -> str:
        return f"{self.source}: {self.key}: {self.reason}"


class ConfigError(Exception):
    """Configuration that cannot be used. `str()` is the report, one problem a line."""

    def __init__(self, problems: Iterable[ConfigProblem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))
