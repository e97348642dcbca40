"""Which target connection bills a deal.

In order: the first of ``routing.rules`` whose conditions all hold; else the
connection whose ``routing.values`` hold the routing field's value; else (the field is
empty) ``sync.default_target``. A deal that routes nowhere, or to a connection that is
not enabled, is rejected naming the field or rule to change.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from billsync.core.canonical import Deal
from billsync.mappings.model import RoutingSpec, RoutingWhen
from billsync.mappings.rejections import Rejections
from billsync.mappings.values import deal_context


def _folded(value: Any) -> str:
    return str(value).strip().casefold()


def rule_matches(when: RoutingWhen, context: Mapping[str, Any]) -> bool:
    """Every condition holds: the deal's value at its path (compared without case or
    surrounding spaces) is one of the accepted values; a missing value never matches."""
    for path, accepted in when.conditions():
        value = context.get(path)
        if value is None or _folded(value) not in {_folded(a) for a in accepted}:
            return False
    return True


class Router:
    """Routes deals by one mapping's ``routing`` section, built once per run."""

    def __init__(
        self, routing: RoutingSpec, source_field: str | None, default_target: str | None
    ) -> None:
        self.routing = routing
        self.source_field = source_field or "routing field"
        self.default_target = default_target
        self.table = {
            _folded(value): target for target, values in routing.values.items() for value in values
        }

    def route(self, deal: Deal, enabled: Collection[str], problems: Rejections) -> str | None:
        """The connection ``deal`` is billed in, or None with the reason in ``problems``."""
        context = deal_context(deal)
        for number, rule in enumerate(self.routing.rules):
            if rule_matches(rule.when, context):
                return self._enabled(rule.to, f"routing.rules[{number}]", enabled, problems)
        field = f"Opportunity.{self.source_field}"
        hint = (deal.target_hint or "").strip()
        if not hint:
            if self.default_target is None:
                problems.add(
                    field,
                    "is empty and no default target is configured",
                    f"set {self.source_field} to one of {self._choices()} or set "
                    "sync.default_target",
                )
                return None
            return self._enabled(self.default_target, field, enabled, problems)
        found = self.table.get(_folded(hint))
        if found is None:
            problems.add(
                field,
                f"'{hint}' is not a known billing platform",
                f"set it to one of {self._choices()}, or add the value under "
                "routing.values (or a rule under routing.rules) in your mapping file",
            )
            return None
        return self._enabled(found, field, enabled, problems)

    def _enabled(
        self, target: str, field: str, enabled: Collection[str], problems: Rejections
    ) -> str | None:
        if target in enabled:
            return target
        problems.add(
            field,
            f"routes to {target}, which is not enabled",
            f"enable {target} in the configuration or route the deal elsewhere",
        )
        return None

    def _choices(self) -> str:
        return ", ".join(values[0] for values in self.routing.values.values() if values)
