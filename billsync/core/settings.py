"""What every settings section is made of, and what a connector's section adds.

A connector declares its own section model (`ConnectorSection`) in its plug-in spec
(`billsync.core.plugins.ConnectorSpec`); `billsync.config` adds one section per
installed connector to the configuration, so a plug-in's settings are validated,
reported, read from ``BILLSYNC_<SECTION>__<KEY>`` and ``_FILE`` secrets, masked and
scrubbed from logs exactly like the built-ins'. Every section forbids unknown keys: a
typo in a config file must stop start-up, not be silently ignored while the default
quietly applies.
"""

from __future__ import annotations

from typing import Any, get_args

from pydantic import AwareDatetime, BaseModel, ConfigDict, SecretStr
from pydantic_core import PydanticCustomError

__all__ = [
    "ConnectorSection",
    "Section",
    "SourceSection",
    "collect_secrets",
    "secret_field_names",
]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def _require_secrets(self, *names: str) -> None:
        """Raise a `missing_secret` error for the first secret that is absent.

        The error carries the key so the loader can report `section.key`, not just
        `section`, and it never carries a value.
        """
        for name in names:
            value = getattr(self, name)
            if value is None or (isinstance(value, SecretStr) and not value.get_secret_value()):
                raise PydanticCustomError(
                    "missing_secret",
                    "required secret is missing",
                    {"key": name},
                )


class ConnectorSection(Section):
    """A connector's section. ``enabled``: a target whose section is enabled is used
    when ``sync.targets`` is not set (sources are chosen by ``sync.source``)."""

    enabled: bool = False


class SourceSection(ConnectorSection):
    """A deal source's section. ``start_from``: where a ledger that has never run starts
    reading deals (``sync.start_from`` wins when both are set)."""

    enabled: bool = True
    start_from: AwareDatetime | None = None


def secret_field_names(section: type[BaseModel]) -> set[str]:
    """Names of the fields of `section` that hold secrets (SecretStr or lists of them)."""
    return {
        name for name, field in section.model_fields.items() if _mentions_secret(field.annotation)
    }


def _mentions_secret(annotation: Any) -> bool:
    if annotation is SecretStr:
        return True
    return any(_mentions_secret(arg) for arg in get_args(annotation))


def collect_secrets(value: Any, found: list[str]) -> None:
    """Append every SecretStr in clear found in ``value`` (models, lists, tuples, and
    mappings such as ``connections:``)."""
    if isinstance(value, SecretStr):
        found.append(value.get_secret_value())
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            collect_secrets(getattr(value, name), found)
    elif isinstance(value, list | tuple):
        for item in value:
            collect_secrets(item, found)
    elif isinstance(value, dict):
        for item in value.values():
            collect_secrets(item, found)
