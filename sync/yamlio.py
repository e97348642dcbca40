"""YAML reading for configuration and mapping files: numbers with a point are Decimal.

PyYAML's SafeLoader turns `0.01` into a float; in billsync such a number is almost
always money or a percentage, so it is read as `Decimal` digit for digit instead.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
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


def load_yaml(text: str) -> Any:
    return yaml.load(text, Loader=DecimalSafeLoader)  # noqa: S506 - a SafeLoader subclass
