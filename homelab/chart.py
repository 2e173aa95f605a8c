"""A horizontal bar chart of the yearly cost estimate, as SVG written from the data (no plotting library).

One bar per line item of the `cost_estimate` output plus the total, scaled to the larger of the
total and the NFR-012 cap; the cap (converted into the estimate's currency through the stated rate)
is a dashed line, drawn only when the two currencies can be compared. Every bar carries its item
and yearly amount as `data-*` attributes, so a reader (or a test) can check the picture against the
figures without measuring pixels.
"""

from xml.sax.saxutils import escape, quoteattr

from homelab.budget import CostEstimate, money

WIDTH = 780
LABEL_WIDTH = 380
BAR_AREA = 280
ROW = 26
BAR = 18
TOP = 34
BOTTOM = 30
LABEL_CHARS = 54
"""A longer item is shortened on the chart (the table and the bar's `data-item` keep it whole)."""


def _bar(index: int, label: str, yearly: float, scale: float, css: str) -> list[str]:
    y = TOP + index * ROW
    width = round(max(yearly, 0.0) * scale, 2)
    shown = label if len(label) <= LABEL_CHARS else label[: LABEL_CHARS - 1] + "…"
    return [
        f'<text x="{LABEL_WIDTH - 8}" y="{y + BAR - 4}" text-anchor="end">{escape(shown)}</text>',
        f'<rect class="{css}" data-item={quoteattr(label)} data-yearly="{yearly:.2f}" '
        f'x="{LABEL_WIDTH}" y="{y}" width="{width}" height="{BAR}"/>',
        f'<text x="{LABEL_WIDTH + width + 6}" y="{y + BAR - 4}">{money(yearly)}</text>',
    ]


def cost_chart_svg(cost: CostEstimate) -> str:
    """The chart as a standalone SVG document."""
    verdict = cost.verdict
    cap = verdict.cap_in_currency if verdict is not None else None
    largest = max([cost.yearly_total, *(li.yearly for li in cost.lines), cap or 0.0])
    scale = BAR_AREA / largest if largest > 0 else 0.0
    rows = len(cost.lines) + 1
    height = TOP + rows * ROW + BOTTOM
    title = f"Yearly cost estimate ({cost.currency}) per line item"
    body: list[str] = [f'<text class="title" x="8" y="20">{escape(title)}</text>']
    for index, line in enumerate(cost.lines):
        body += _bar(index, line.item, line.yearly, scale, "bar")
    body += _bar(len(cost.lines), "total", cost.yearly_total, scale, "total")
    if verdict is not None and cap is not None:
        x = round(LABEL_WIDTH + cap * scale, 2)
        label = f"NFR-012 cap: {money(verdict.cap)} {verdict.cap_currency}"
        if verdict.cap_currency != cost.currency:
            label += f" = {money(cap)} {cost.currency}"
        body += [
            f'<line class="cap" data-cap="{cap:.2f}" x1="{x}" y1="{TOP - 6}" x2="{x}" y2="{TOP + rows * ROW}"/>',
            f'<text x="{x}" y="{TOP + rows * ROW + 16}" text-anchor="end">{escape(label)}</text>',
        ]
    elif verdict is not None:
        body.append(
            f'<text x="8" y="{TOP + rows * ROW + 16}">{escape("NFR-012 cap not drawn: " + verdict.sentence())}</text>'
        )
    style = (
        "text{font:12px sans-serif;fill:#222}.title{font-weight:bold}.bar{fill:#4e79a7}.total{fill:#f28e2b}"
        ".cap{stroke:#e15759;stroke-width:2;stroke-dasharray:5 3}"
    )
    return "\n".join(
        [
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
            f'viewBox="0 0 {WIDTH} {height}" role="img" aria-label={quoteattr(title)}>',
            f"<title>{escape(title)}</title>",
            f"<style>{style}</style>",
            *body,
            "</svg>",
        ]
    )
