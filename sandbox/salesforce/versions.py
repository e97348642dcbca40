"""API versions: the list at `/services/data/` and which `vNN.N` paths are served.

Salesforce ships three releases a year, each one version up: Spring '26 is 66.0.
"""

from __future__ import annotations

OLDEST_VERSION = 31
LATEST_VERSION = 66


def release_label(major: int) -> str:
    """66 -> "Spring '26": three releases a year, Spring, Summer, Winter (of the next year)."""
    back = LATEST_VERSION - major
    season = ("Spring", "Winter", "Summer")[back % 3]
    year = 26 - back // 3 - (1 if season == "Summer" else 0)
    return f"{season} '{year:02d}"


def versions() -> list[dict[str, str]]:
    return [
        {"label": release_label(v), "url": f"/services/data/v{v}.0", "version": f"{v}.0"}
        for v in range(OLDEST_VERSION, LATEST_VERSION + 1)
    ]


def supported(version: str) -> bool:
    if not version.startswith("v") or not version.endswith(".0"):
        return False
    major = version[1:-2]
    return major.isdigit() and OLDEST_VERSION <= int(major) <= LATEST_VERSION
