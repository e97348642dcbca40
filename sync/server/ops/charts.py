"""The aging chart, drawn on the server as inline SVG (no script, no chart library).

One horizontal bar per currency, split into the five aging buckets. Currencies are
never added up or compared, so each bar is that currency's own total (100 %) and the
total is written beside it; the table under the chart has the exact amounts.

Money stays Decimal: a segment's edges are its cumulative share of the total scaled
to the bar's width, rounded to a tenth of a pixel only at the end, so the segments
always add up to the whole bar.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal

from markupsafe import Markup, escape

from billsync.sync.ops.aging import BUCKETS

COLOURS = {
    "current": "#2e7d32",
    "1-30": "#9ccc65",
    "31-60": "#fbc02d",
    "61-90": "#f57c00",
    "90+": "#c62828",
}
WIDTH = 640
LABEL_W = 56
BAR_X = LABEL_W + 8
BAR_W = Decimal(400)
ROW_H = 30
BAR_H = 20
TOP = 8
LEGEND_H = 34
_PIXEL = Decimal("0.1")
_HUNDRED = Decimal(100)


def _px(value: Decimal) -> str:
    return format(value.quantize(_PIXEL, ROUND_HALF_UP), "f")


def _edges(amounts: list[Decimal], total: Decimal) -> list[Decimal]:
    """Where each segment starts and ends, in pixels from the bar's left end."""
    edges, running = [Decimal(0)], Decimal(0)
    for amount in amounts:
        running += amount
        edges.append((running / total * BAR_W).quantize(_PIXEL, ROUND_HALF_UP))
    return edges


def _bar(currency: str, figures: Mapping[str, str], y: int) -> list[str]:
    total = Decimal(figures["total"])
    text_y = y + BAR_H - 5
    parts = [f'<text x="{LABEL_W}" y="{text_y}" text-anchor="end">{escape(currency)}</text>']
    if total <= 0:
        parts.append(f'<text x="{BAR_X}" y="{text_y}">nothing open</text>')
        return parts
    amounts = [Decimal(figures[name]) for name in BUCKETS]
    edges = _edges(amounts, total)
    for index, name in enumerate(BUCKETS):
        width = edges[index + 1] - edges[index]
        if amounts[index] <= 0 or width <= 0:
            continue
        share = (amounts[index] / total * _HUNDRED).quantize(_PIXEL, ROUND_HALF_UP)
        label = f"{currency} {name}: {figures[name]} ({share} %)"
        parts.append(
            f'<rect data-bucket="{escape(name)}" x="{_px(BAR_X + edges[index])}" y="{y}" '
            f'width="{_px(width)}" height="{BAR_H}" fill="{COLOURS[name]}">'
            f"<title>{escape(label)}</title></rect>"
        )
    total_x = BAR_X + int(BAR_W) + 8
    parts.append(f'<text x="{total_x}" y="{text_y}">{escape(figures["total"])}</text>')
    return parts


def _legend(y: int) -> list[str]:
    parts, x = [], BAR_X
    for name in BUCKETS:
        parts.append(f'<rect x="{x}" y="{y}" width="12" height="12" fill="{COLOURS[name]}"/>')
        parts.append(f'<text x="{x + 16}" y="{y + 11}">{escape(name)}</text>')
        x += 80
    return parts


def aging_chart(as_of: str, currencies: Mapping[str, Mapping[str, str]]) -> Markup:
    """The SVG for an aging document's ``currencies`` (bucket name -> decimal string)."""
    rows = sorted(currencies.items())
    height = TOP + ROW_H * max(len(rows), 1) + LEGEND_H
    title = f"AR aging as of {as_of}"
    description = (
        "Open receivables per currency split by days past due; each bar is that "
        "currency's total, written at its right end."
    )
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="aging-chart" role="img" '
        f'width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" '
        f'aria-labelledby="aging-title aging-desc" font-family="sans-serif" font-size="13">',
        f'<title id="aging-title">{escape(title)}</title>',
        f'<desc id="aging-desc">{escape(description)}</desc>',
    ]
    for index, (currency, figures) in enumerate(rows):
        parts += _bar(currency, figures, TOP + ROW_H * index)
    if not rows:
        parts.append(f'<text x="{BAR_X}" y="{TOP + 15}">No open receivables.</text>')
    parts += _legend(TOP + ROW_H * max(len(rows), 1) + 8)
    parts.append("</svg>")
    return Markup("\n".join(parts))  # noqa: S704 - every piece of text above is escaped
