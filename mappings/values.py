"""Where a mapped value comes from: a field path, a template or a constant.

A value spec in a mapping file is one of:
- a path string: `account.name`;
- `{path: account.name, transforms: [strip, {truncate: 100}]}`;
- `{template: "SF-{deal.id}", transforms: [...]}`: placeholders are paths, nothing else
  (`{{` and `}}` write literal braces);
- `{value: "Net 30"}`: a constant.

Paths name attributes of the canonical deal, its account, contact and — for line
values — the line. The set is closed (`KNOWN_PATHS`), so a typo fails when the file is
loaded, not halfway through a run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from billsync.core.canonical import Deal, DealLine
from billsync.mappings.transforms import FunctionRegistry, apply_transforms, check_transform

DEAL_PATHS = frozenset(
    {
        "deal.id", "deal.name", "deal.close_date", "deal.currency", "deal.amount",
        "deal.po_number", "deal.terms", "deal.target_hint", "deal.revision",
        "account.id", "account.name", "account.number", "account.billing_email",
        "account.billing_address.line1", "account.billing_address.line2",
        "account.billing_address.city", "account.billing_address.region",
        "account.billing_address.postal_code", "account.billing_address.country",
        "contact.name", "contact.email",
    }
)  # fmt: skip
LINE_PATHS = frozenset(
    {
        "line.id", "line.product_code", "line.description", "line.quantity",
        "line.unit_price", "line.discount_percent", "line.service_date",
    }
)  # fmt: skip
KNOWN_PATHS = DEAL_PATHS | LINE_PATHS

_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


@dataclass(frozen=True)
class ValueSpec:
    path: str | None = None
    template: str | None = None
    constant: Any = None
    transforms: tuple[Any, ...] = ()

    def paths(self) -> set[str]:
        if self.path:
            return {self.path}
        if self.template:
            return set(_PLACEHOLDER.findall(_unescaped(self.template)))
        return set()


def _unescaped(template: str) -> str:
    return template.replace("{{", "").replace("}}", "")


def parse_value_spec(raw: Any, functions: FunctionRegistry, *, line_level: bool) -> ValueSpec:
    """Build a ValueSpec or raise ValueError saying what is wrong (the loader adds where)."""
    if isinstance(raw, str):
        spec = ValueSpec(path=raw)
    elif isinstance(raw, dict):
        unknown = set(raw) - {"path", "template", "value", "transforms"}
        if unknown:
            raise ValueError(f"unknown keys {sorted(unknown)} (use path, template or value)")
        sources = [k for k in ("path", "template", "value") if k in raw]
        if len(sources) != 1:
            raise ValueError("give exactly one of path, template or value")
        transforms = raw.get("transforms") or []
        if not isinstance(transforms, list):
            raise ValueError("transforms must be a list")
        for step in transforms:
            problem = check_transform(step, functions)
            if problem:
                raise ValueError(problem)
        spec = ValueSpec(
            path=raw.get("path"),
            template=raw.get("template"),
            constant=raw.get("value"),
            transforms=tuple(transforms),
        )
    else:
        raise ValueError("a value is a field path, or a mapping with path, template or value")
    allowed = KNOWN_PATHS if line_level else DEAL_PATHS
    for path in sorted(spec.paths()):
        if path not in allowed:
            scope = "deal, account, contact or line" if line_level else "deal, account or contact"
            raise ValueError(f"unknown field path '{path}' (paths here are {scope} attributes)")
    return spec


def deal_context(deal: Deal, line: DealLine | None = None) -> dict[str, Any]:
    address = deal.account.billing_address
    contact = deal.billing_contact
    context: dict[str, Any] = {
        "deal.id": deal.id,
        "deal.name": deal.name,
        "deal.close_date": deal.close_date,
        "deal.currency": deal.currency,
        "deal.amount": deal.amount,
        "deal.po_number": deal.po_number,
        "deal.terms": deal.terms,
        "deal.target_hint": deal.target_hint,
        "deal.revision": deal.revision,
        "account.id": deal.account.id,
        "account.name": deal.account.name,
        "account.number": deal.account.number,
        "account.billing_email": deal.account.billing_email,
        "contact.name": contact.name if contact else None,
        "contact.email": contact.email if contact else None,
    }
    for part in ("line1", "line2", "city", "region", "postal_code", "country"):
        context[f"account.billing_address.{part}"] = getattr(address, part) if address else None
    if line is not None:
        context.update(
            {
                "line.id": line.id,
                "line.product_code": line.product_code,
                "line.description": line.description,
                "line.quantity": line.quantity,
                "line.unit_price": line.unit_price,
                "line.discount_percent": line.discount_percent,
                "line.service_date": line.service_date,
            }
        )
    return context


def resolve_value(spec: ValueSpec, context: dict[str, Any], functions: FunctionRegistry) -> Any:
    if spec.path is not None:
        value = context.get(spec.path)
    elif spec.template is not None:
        value = _render(spec.template, context)
    else:
        value = spec.constant
    return apply_transforms(value, spec.transforms, functions)


def _render(template: str, context: dict[str, Any]) -> str:
    def substitute(match: re.Match[str]) -> str:
        value = context.get(match.group(1))
        return "" if value is None else str(value)

    parts = template.split("{{")
    rendered = []
    for part in parts:
        pieces = part.split("}}")
        rendered.append("}".join(_PLACEHOLDER.sub(substitute, piece) for piece in pieces))
    return "{".join(rendered)
