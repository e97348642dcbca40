"""Load mapping files: the packaged default, then the user's files in order.

Later files override earlier ones key by key (mappings merge; lists and values
replace). Every problem is reported as `FILE:LINE: dotted.key: reason`, where FILE and
LINE are where the offending key was last written. The merged result has a hash: the
retry queue re-arms `invalid_data` items when it changes.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from mappings.model import MappingSpec
from mappings.transforms import FunctionRegistry
from sync.yamlio import load_yaml

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


def default_mapping_path() -> Path:
    return Path(str(files("mappings").joinpath(DEFAULT_MAPPING_NAME)))


def load_mappings(
    user_files: list[Path] | tuple[Path, ...] = (),
    *,
    functions: FunctionRegistry | None = None,
    include_default: bool = True,
) -> LoadedMapping:
    registry = functions or FunctionRegistry.discover()
    paths = ([default_mapping_path()] if include_default else []) + [Path(p) for p in user_files]
    merged: dict[str, Any] = {}
    origin: dict[Key, tuple[str, int]] = {}
    problems: list[MappingProblem] = []
    for path in paths:
        document, lines = _read(path, problems)
        _merge(merged, document, (), str(path), lines, origin)
    if problems:
        raise MappingError(problems)
    try:
        spec = MappingSpec.model_validate(merged, context={"functions": registry})
    except ValidationError as exc:
        raise MappingError(_explain(exc, origin, paths)) from None
    problems = _cross_checks(spec, origin, paths)
    if problems:
        raise MappingError(problems)
    digest = hashlib.sha256(
        json.dumps(merged, sort_keys=True, default=str).encode("utf-8")
    ).hexdigest()
    return LoadedMapping(spec, tuple(str(p) for p in paths), digest, registry)


def _read(path: Path, problems: list[MappingProblem]) -> tuple[dict[str, Any], dict[Key, int]]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        problems.append(MappingProblem(str(path), None, "-", f"cannot read: {exc.strerror}"))
        return {}, {}
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        document = load_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        reason = getattr(exc, "problem", None) or "not valid YAML"
        problems.append(MappingProblem(str(path), line, "-", f"invalid YAML: {reason}"))
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
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            origin[path] = (file, lines.get(path, 0))
            _merge(target[key], value, path, file, lines, origin)
            continue
        target[key] = value
        for known in [k for k in origin if k[: len(path)] == path]:
            del origin[known]
        for sub, line in lines.items():
            if sub[: len(path)] == path:
                origin[sub] = (file, line)


def _locate(key: Key, origin: dict[Key, tuple[str, int]], paths: list[Path]) -> tuple[str, int]:
    for end in range(len(key), 0, -1):
        if key[:end] in origin:
            return origin[key[:end]]
    return (str(paths[-1]) if paths else "mapping", 0)


def _explain(
    exc: ValidationError, origin: dict[Key, tuple[str, int]], paths: list[Path]
) -> list[MappingProblem]:
    problems = []
    for error in exc.errors(include_input=False, include_url=False):
        key = tuple(str(part) for part in error["loc"])
        file, line = _locate(key, origin, paths)
        reason = "unknown key" if error["type"] == "extra_forbidden" else error["msg"]
        reason = reason.removeprefix("Value error, ")
        problems.append(MappingProblem(file, line or None, ".".join(key), reason))
    return sorted(problems, key=lambda p: (p.file, p.line or 0))


def _cross_checks(
    spec: MappingSpec, origin: dict[Key, tuple[str, int]], paths: list[Path]
) -> list[MappingProblem]:
    found: list[tuple[Key, str]] = []
    terms = spec.terms
    if terms.default is not None and terms.default not in terms.values:
        found.append((("terms", "default"), f"'{terms.default}' is not one of terms.values"))
    no_products = spec.deals_without_products
    if no_products.action == "single_line" and not no_products.product_code:
        found.append(
            (("deals_without_products", "product_code"), "needed when action is single_line")
        )
    seen: dict[str, str] = {}
    for target, values in spec.routing.values.items():
        for value in values:
            folded = value.casefold()
            if folded in seen and seen[folded] != target:
                found.append(
                    (("routing", "values", target), f"'{value}' also routes to {seen[folded]}")
                )
            seen[folded] = target
    problems = []
    for key, reason in found:
        file, line = _locate(key, origin, paths)
        problems.append(MappingProblem(file, line or None, ".".join(key), reason))
    return problems
