"""YAML reading for configuration and mapping files: numbers with a point are Decimal,
and every document is bounded.

PyYAML's SafeLoader turns `0.01` into a float; in billsync such a number is almost
always money or a percentage, so it is read as `Decimal` digit for digit instead.

Bounds: a file a few kilobytes long can still be hostile. Aliases are references, so
"billion laughs" costs nothing to compose but explodes as soon as anything walks it
(3.9 GB and a MemoryError for a mapping file); deep nesting ends in a RecursionError.
So the file size, the nesting depth and the node count *with aliases expanded* are
capped, and a breach is a `YamlLimitError` (a `yaml.YAMLError` with a mark), which the
loaders report as one line naming the file.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml


class DecimalSafeLoader(yaml.SafeLoader):
    """SafeLoader whose floats are Decimals (no float ever exists)."""


def _construct_decimal(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Decimal:
    text = str(loader.construct_scalar(node)).replace("_", "")
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise yaml.constructor.ConstructorError(
            None, None, f"'{text}' is not a decimal number", node.start_mark
        ) from None
    if not value.is_finite():
        raise yaml.constructor.ConstructorError(
            None, None, f"'{text}' is not a finite number", node.start_mark
        )
    return value


DecimalSafeLoader.add_constructor("tag:yaml.org,2002:float", _construct_decimal)


# Far above any real config or mapping file (the packaged default mapping is ~1,000
# nodes, 20 levels at most), far below anything that hurts.
MAX_YAML_BYTES = 1024 * 1024
MAX_YAML_DEPTH = 64
MAX_YAML_NODES = 50_000


class YamlLimitError(yaml.YAMLError):
    """A document over one of the bounds; ``problem`` and ``problem_mark`` as PyYAML's."""

    def __init__(self, problem: str, mark: yaml.Mark | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.problem_mark = mark


class _BoundedLoader(DecimalSafeLoader):
    """Refuses nesting deeper than MAX_YAML_DEPTH while composing (before recursing)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                raise YamlLimitError(
                    f"nested deeper than {MAX_YAML_DEPTH} levels",
                    self.peek_event().start_mark,  # type: ignore[no-untyped-call]
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def read_yaml_text(path: Path) -> str:
    """The file's text, refusing one over MAX_YAML_BYTES without reading it all."""
    with path.open("rb") as stream:
        data = stream.read(MAX_YAML_BYTES + 1)
    if len(data) > MAX_YAML_BYTES:
        raise YamlLimitError(f"the file is larger than {MAX_YAML_BYTES // 1024} KiB")
    return data.decode("utf-8")


def load_yaml_with_node(text: str) -> tuple[yaml.Node | None, Any]:
    """The bounded document and its node graph (for line numbers)."""
    if len(text) > MAX_YAML_BYTES:
        raise YamlLimitError(f"the document is larger than {MAX_YAML_BYTES // 1024} KiB")
    loader = _BoundedLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, None
        _measure(node, 1, {}, set())
        return node, loader.construct_document(node)
    finally:
        loader.dispose()


def load_yaml(text: str) -> Any:
    return load_yaml_with_node(text)[1]


def _measure(
    node: yaml.Node, depth: int, memo: dict[int, tuple[int, int]], active: set[int]
) -> tuple[int, int]:
    """(nodes with aliases expanded, height) of ``node``, refusing a breach of the
    bounds. Memoised per node, so an alias bomb is measured without being expanded."""
    key = id(node)
    if key in active:
        raise YamlLimitError("an alias refers to a node that contains it", node.start_mark)
    if key in memo:
        total, height = memo[key]
    else:
        active.add(key)
        total, height = 1, 1
        for child in _children(node):
            if depth + 1 > MAX_YAML_DEPTH:
                raise YamlLimitError(
                    f"nested deeper than {MAX_YAML_DEPTH} levels (aliases expanded)",
                    child.start_mark,
                )
            size, below = _measure(child, depth + 1, memo, active)
            total += size
            height = max(height, below + 1)
            if total > MAX_YAML_NODES:
                raise YamlLimitError(
                    f"aliases expand past {MAX_YAML_NODES} nodes (an alias bomb?)",
                    node.start_mark,
                )
        active.discard(key)
        memo[key] = (total, height)
    if depth + height - 1 > MAX_YAML_DEPTH:
        raise YamlLimitError(
            f"nested deeper than {MAX_YAML_DEPTH} levels (aliases expanded)", node.start_mark
        )
    return total, height


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []
