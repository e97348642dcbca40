"""Load mapping files: the packaged default, then the user's files in order.

Later files override earlier ones key by key (mappings merge; lists and values
replace). A value spec is one value, not a mapping to merge: a user's
``{template: "SF-{deal.id}"}`` replaces the default's ``{path: deal.id, transforms: …}``
whole (its source and its transforms), so the file says all of the rule; a spec that
names no source (``{transforms: […]}`` alone) still merges into the default's.
Every problem is reported as `FILE:LINE: dotted.key: reason`, where FILE and
LINE are where the offending key was last written. The merged result has a hash: the
retry queue re-arms `invalid_data` items when it changes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from billsync.core.target_mapping import VALUE_PARSER, UniqueReference
from billsync.core.yamlio import YamlLimitError, load_yaml_with_node, read_yaml_text
from billsync.mappings.model import MappingSpec, mapping_model
from billsync.mappings.targets import MappingTargets
from billsync.mappings.transforms import FunctionRegistry
from billsync.mappings.values import ValueSpec, parse_value_spec

DEFAULT_MAPPING_NAME = "default.yaml"

Key = tuple[str, ...]


@dataclass(frozen=True)
class MappingProblem:
    file: str
    line: int | None
    key: str
    reason: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.key}: {self.reason}"


class MappingError(Exception):
    """Mapping files that cannot be used; `str()` is one problem a line."""

    def __init__(self, problems: list[MappingProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass(frozen=True)
class LoadedMapping:
    spec: MappingSpec
    files: tuple[str, ...]
    digest: str
    """sha256 of the merged mapping: changes whenever any effective value changes."""
    functions: FunctionRegistry

    def section(self, name: str) -> dict[str, Any] | None:
        """One section of the merged mapping as plain data (`MappingSections`, what a
        connector sees of the mapping), or None when the mapping has no such section."""
        value = getattr(self.spec, name, None)
        return value.model_dump() if isinstance(value, BaseModel) else None


def default_mapping_path() -> Path:
    return Path(str(files("billsync.mappings").joinpath(DEFAULT_MAPPING_NAME)))


def load_mappings(
    user_files: list[Path] | tuple[Path, ...] = (),
    *,
    functions: FunctionRegistry | None = None,
    include_default: bool = True,
    targets: MappingTargets | None = None,
    unique_reference: Sequence[UniqueReference] = (),
) -> LoadedMapping:
    """Load and check the mapping files.

    ``targets``: the installed connectors and configured connections whose names the
    target sections may use (default: every installed connector, one connection each).
    ``unique_reference``: why configured connections rely on the invoice reference
    being unique per deal, each ``setting`` named where the operator sets it; any makes
    the mapping prove it (`unique_reference_problem`).
    """
    registry = functions or FunctionRegistry.discover()
    targets = targets or MappingTargets.installed()
    paths = ([default_mapping_path()] if include_default else []) + [Path(p) for p in user_files]
    merged: dict[str, Any] = {}
    origin: dict[Key, tuple[str, int]] = {}
    problems: list[MappingProblem] = []
    for path in paths:
        document, lines = _read(path, problems)
        _merge(merged, document, (), str(path), lines, origin)
    if problems:
        raise MappingError(problems)

    def parse_value(raw: Any, line_level: bool) -> ValueSpec:
        return parse_value_spec(raw, registry, line_level=line_level)

    context = {"functions": registry, VALUE_PARSER: parse_value}
    try:
        spec = mapping_model(targets).model_validate(merged, context=context)
    except ValidationError as exc:
        raise MappingError(_explain(exc, origin, paths, targets)) from None
    problems = _cross_checks(spec, origin, paths, unique_reference)
    if problems:
        raise MappingError(problems)
    digest = hashlib.sha256(
        json.dumps(merged, sort_keys=True, default=str).encode("utf-8")
    ).hexdigest()
    return LoadedMapping(spec, tuple(str(p) for p in paths), digest, registry)


def _read(path: Path, problems: list[MappingProblem]) -> tuple[dict[str, Any], dict[Key, int]]:
    try:
        text = read_yaml_text(path)
    except OSError as exc:
        problems.append(MappingProblem(str(path), None, "-", f"cannot read: {exc.strerror}"))
        return {}, {}
    except UnicodeDecodeError:
        problems.append(MappingProblem(str(path), None, "-", "refused: not UTF-8 text"))
        return {}, {}
    except YamlLimitError as exc:
        problems.append(MappingProblem(str(path), None, "-", f"refused: {exc.problem}"))
        return {}, {}
    try:
        node, document = load_yaml_with_node(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        reason = getattr(exc, "problem", None) or "not valid YAML"
        kind = "refused" if isinstance(exc, YamlLimitError) else "invalid YAML"
        problems.append(MappingProblem(str(path), line, "-", f"{kind}: {reason}"))
        return {}, {}
    if document is None:
        return {}, {}
    if not isinstance(document, dict):
        problems.append(MappingProblem(str(path), 1, "-", "the top level must be a mapping"))
        return {}, {}
    lines: dict[Key, int] = {}
    _collect_lines(node, (), lines)
    return document, lines


def _collect_lines(node: yaml.Node | None, prefix: Key, lines: dict[Key, int]) -> None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = (*prefix, str(key_node.value))
            lines[key] = key_node.start_mark.line + 1
            _collect_lines(value_node, key, lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            key = (*prefix, str(index))
            lines[key] = item.start_mark.line + 1
            _collect_lines(item, key, lines)


def _merge(
    target: dict[str, Any],
    source: dict[str, Any],
    prefix: Key,
    file: str,
    lines: dict[Key, int],
    origin: dict[Key, tuple[str, int]],
) -> None:
    for key, value in source.items():
        path = (*prefix, str(key))
        if (
            isinstance(value, dict)
            and isinstance(target.get(key), dict)
            and not (_names_source(value) and _names_source(target[key]))
        ):
            origin[path] = (file, lines.get(path, 0))
            _merge(target[key], value, path, file, lines, origin)
            continue
        target[key] = value
        for known in [k for k in origin if k[: len(path)] == path]:
            del origin[known]
        for sub, line in lines.items():
            if sub[: len(path)] == path:
                origin[sub] = (file, line)


_VALUE_SOURCES = frozenset({"path", "template", "value"})
# The longest deal id the reference must hold whole (the deal source's ids are 18 characters).
DEAL_ID_LENGTH = 18


def unique_reference_problem(doc_number: ValueSpec | None, demand: UniqueReference) -> str | None:
    """Why the invoice reference is not guaranteed unique per deal, or None.

    Guaranteed means: the reference holds the whole deal id (``{path: deal.id}`` or a
    template with ``{deal.id}``), and no transform can cut it (only ``{truncate: n}``
    with room for the whole rendered value). Then a number belongs to one deal only,
    so the engine's own recovery look-up (by the reference the intent stored, which
    runs whatever the target's settings say) finds what a lost answer created, and a
    duplicate number the target refuses is adopted as the deal's. Anything else (a
    constant, the deal name, a truncated id) may be shared by two deals: a connection
    that relies on the reference (``demand``: e.g. one that skips its look-up before
    creating) would turn a lost answer into a second invoice, so the mapping is refused.
    """
    fix = (
        f"set {demand.setting}, or map invoice.doc_number to the whole deal id "
        '(e.g. {template: "SF-{deal.id}"})'
    )
    if doc_number is None:
        return f"{demand.because} but invoices carry no reference number; {fix}"
    if doc_number.path == "deal.id":
        length = DEAL_ID_LENGTH
    elif doc_number.template and "{deal.id}" in doc_number.template:
        rendered = doc_number.template.replace("{deal.id}", "x" * DEAL_ID_LENGTH)
        length = len(rendered.replace("{{", "{").replace("}}", "}"))
    else:
        return (
            f"{demand.because} but the invoice reference is not made from the whole "
            f"deal id, so two deals may share it; {fix}"
        )
    for step in doc_number.transforms:
        limit = step.get("truncate") if isinstance(step, dict) and len(step) == 1 else None
        if not isinstance(limit, int) or limit < length:
            return (
                f"{demand.because} but transform {step!r} may change or cut the deal id "
                f"in the invoice reference; {fix}"
            )
    return None


def _names_source(mapping: dict[str, Any]) -> bool:
    """A value spec that says where its value comes from (path, template or value)."""
    return not _VALUE_SOURCES.isdisjoint(mapping)


def _locate(key: Key, origin: dict[Key, tuple[str, int]], paths: list[Path]) -> tuple[str, int]:
    for end in range(len(key), 0, -1):
        if key[:end] in origin:
            return origin[key[:end]]
    return (str(paths[-1]) if paths else "mapping", 0)


def _explain(
    exc: ValidationError,
    origin: dict[Key, tuple[str, int]],
    paths: list[Path],
    targets: MappingTargets,
) -> list[MappingProblem]:
    problems = []
    for error in exc.errors(include_input=False, include_url=False):
        key = tuple(str(part) for part in error["loc"])
        file, line = _locate(key, origin, paths)
        if error["type"] == "extra_forbidden":
            reason = _unknown_key(key, targets)
        else:
            reason = error["msg"].removeprefix("Value error, ")
        problems.append(MappingProblem(file, line or None, ".".join(key), reason))
    return sorted(problems, key=lambda p: (p.file, p.line or 0))


_TARGET_SECTIONS = frozenset({"products", "tax", "currencies"})


def _unknown_key(key: Key, targets: MappingTargets) -> str:
    """Why a key is unknown, saying more when it names a target: no such connection
    or connector, or a connector that takes no entry there."""
    is_target_key = (len(key) == 2 and key[0] in _TARGET_SECTIONS) or (
        len(key) == 4 and key[:2] == ("terms", "values")
    )
    if not is_target_key:
        return "unknown key"
    name = key[-1]
    unknown = _unknown_target(name, targets)
    if unknown is not None:
        return f"unknown key: {unknown}"
    return f"unknown key: connector '{targets.kind_of(name)}' takes no entry here"


def _unknown_target(name: str, targets: MappingTargets) -> str | None:
    if targets.kind_of(name) is not None:
        return None
    return (
        f"'{name}' is neither a configured connection nor an installed connector "
        f"(known: {', '.join(targets.names()) or 'none'})"
    )


def _cross_checks(
    spec: MappingSpec,
    origin: dict[Key, tuple[str, int]],
    paths: list[Path],
    unique_reference: Sequence[UniqueReference] = (),
) -> list[MappingProblem]:
    found: list[tuple[Key, str]] = []
    for demand in unique_reference:
        problem = unique_reference_problem(spec.invoice.doc_number, demand)
        if problem is not None:
            found.append((("invoice", "doc_number"), problem))
    terms = spec.terms
    if terms.default is not None and terms.default not in terms.values:
        found.append((("terms", "default"), f"'{terms.default}' is not one of terms.values"))
    no_products = spec.deals_without_products
    if no_products.action == "single_line" and not no_products.product_code:
        found.append(
            (("deals_without_products", "product_code"), "needed when action is single_line")
        )
    found += _routing_checks(spec)
    problems = []
    for key, reason in found:
        file, line = _locate(key, origin, paths)
        problems.append(MappingProblem(file, line or None, ".".join(key), reason))
    return problems


def _routing_checks(spec: MappingSpec) -> list[tuple[Key, str]]:
    found: list[tuple[Key, str]] = []
    routing, targets = spec.routing, spec.targets
    for number, rule in enumerate(routing.rules):
        unknown = _unknown_target(rule.to, targets)
        if unknown is not None:
            found.append((("routing", "rules", str(number), "to"), unknown))
    seen: dict[str, str] = {}
    for target, values in routing.values.items():
        unknown = _unknown_target(target, targets)
        if unknown is not None:
            found.append((("routing", "values", target), unknown))
        for value in values:
            folded = value.casefold()
            if folded in seen and seen[folded] != target:
                found.append(
                    (("routing", "values", target), f"'{value}' also routes to {seen[folded]}")
                )
            seen[folded] = target
    return found
