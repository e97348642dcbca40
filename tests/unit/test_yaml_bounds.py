"""Bounded YAML: alias bombs, deep nesting, huge files and self-referencing aliases are
refused with one line naming the file, before anything walks the document."""

from __future__ import annotations

from pathlib import Path

import pytest

from billsync.config.loader import load_settings
from billsync.core.problems import ConfigError
from billsync.core.yamlio import MAX_YAML_BYTES, MAX_YAML_DEPTH, YamlLimitError, load_yaml
from billsync.mappings.loader import MappingError, load_mappings


def alias_bomb(levels: int = 9) -> str:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"a{i}: &a{i} [{','.join([f'*a{i - 1}'] * 9)}]" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


HOSTILE = {
    "alias bomb": (alias_bomb(), "aliases expand past"),
    "deep flow nesting": ("x: " + "[" * 5000 + "]" * 5000 + "\n", "nested deeper than"),
    "deep block nesting": (
        "".join("  " * i + f"k{i}:\n" for i in range(200)) + "  " * 200 + "v\n",
        "nested deeper than",
    ),
    "deep through aliases": (
        "a: &a " + "[" * 40 + "1" + "]" * 40 + "\nb: " + "[" * 40 + "*a" + "]" * 40 + "\n",
        "nested deeper than",
    ),
    "self reference": ("a: &a [*a]\n", "refers to a node that contains it"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_load_yaml_refuses(name: str) -> None:
    text, reason = HOSTILE[name]
    with pytest.raises(YamlLimitError, match=reason):
        load_yaml(text)


def test_ordinary_documents_with_aliases_still_load() -> None:
    doc = load_yaml("base: &b {a: 1.5}\nx: *b\ny: {<<: *b, c: 2}\n")
    assert doc["x"] == {"a": load_yaml("1.5")} and doc["y"]["c"] == 2
    nested = "x: " + "[" * (MAX_YAML_DEPTH - 1) + "]" * (MAX_YAML_DEPTH - 1)
    assert load_yaml(nested) is not None


@pytest.mark.parametrize("name", [*sorted(HOSTILE), "too large"])
def test_config_and_mapping_files_report_one_line(name: str, tmp_path: Path) -> None:
    path = tmp_path / "hostile.yaml"
    if name == "too large":
        path.write_text("# " + "x" * MAX_YAML_BYTES + "\n", encoding="utf-8")
        reason = "larger than"
    else:
        text, reason = HOSTILE[name]
        path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as config:
        load_settings(path, {})
    with pytest.raises(MappingError) as mapping:
        load_mappings([path])
    for said in (str(config.value), str(mapping.value)):
        assert said.count("\n") == 0 and str(path) in said and reason in said, said
        assert "refused" in said
