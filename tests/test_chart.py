"""The cost chart: an SVG written from the estimate, whose bars are the estimate's figures."""

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from homelab import cli
from homelab.budget import CostEstimate, parse_cost_estimate
from homelab.chart import BAR_AREA, LABEL_WIDTH, cost_chart_svg
from homelab.render import StackResult
from homelab.report import render_markdown
from policies.rules import RULES
from tests.policies.previews import preview, previewed

SVG = "{http://www.w3.org/2000/svg}"


def _estimate(*yearly: float, currency: str = "EUR", cap: float = 1000, cap_currency: str = "USD") -> CostEstimate:
    lines = [{"item": f"item {i}", "monthly": round(y / 12, 2), "yearly": y} for i, y in enumerate(yearly)]
    return parse_cost_estimate(
        {
            "currency": currency,
            "lines": lines,
            "yearly_total": round(sum(yearly), 2),
            "cap": {"yearly": cap, "currency": cap_currency, "usd_rates": {"EUR": 1.25}},
        }
    )


def _bars(svg: str) -> list[ET.Element]:
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    return [r for r in root.iter(f"{SVG}rect") if "data-item" in r.attrib]


def test_one_bar_per_line_item_and_the_total_in_order_and_to_scale() -> None:
    cost = _estimate(120, 30, 0, 12)
    bars = _bars(cost_chart_svg(cost))
    assert [b.get("data-item") for b in bars] == ["item 0", "item 1", "item 2", "item 3", "total"]
    assert [float(b.get("data-yearly", "")) for b in bars] == [120, 30, 0, 12, 162]
    # The scale is the larger of the total and the cap in the estimate's currency: 1000 USD at 1.25 = 800 EUR.
    for bar in bars:
        assert float(bar.get("x", "")) == LABEL_WIDTH
        assert float(bar.get("width", "")) == pytest.approx(
            float(bar.get("data-yearly", "")) / 800 * BAR_AREA, abs=0.01
        )
    assert {b.get("class") for b in bars[:-1]} == {"bar"} and bars[-1].get("class") == "total"


def test_the_cap_line_sits_at_the_converted_cap() -> None:
    root = ET.fromstring(cost_chart_svg(_estimate(500, 600)))
    (cap,) = root.iter(f"{SVG}line")
    assert float(cap.get("data-cap", "")) == 800
    # The total (1,100 EUR) is the widest thing: the cap line is at 800/1100 of the bar area.
    assert float(cap.get("x1", "")) == pytest.approx(LABEL_WIDTH + 800 / 1100 * BAR_AREA, abs=0.01)
    texts = "".join(t.text or "" for t in root.iter(f"{SVG}text"))
    assert "NFR-012 cap: 1,000.00 USD = 800.00 EUR" in texts


def test_without_a_rate_the_cap_is_not_drawn_and_the_chart_says_why() -> None:
    root = ET.fromstring(cost_chart_svg(_estimate(100, currency="GBP")))
    assert list(root.iter(f"{SVG}line")) == []
    texts = "".join(t.text or "" for t in root.iter(f"{SVG}text"))
    assert "no exchange rate between GBP and USD is configured: not compared" in texts


def test_item_text_is_escaped() -> None:
    cost = parse_cost_estimate({"currency": "EUR", "lines": [{"item": "a <b> & 'c'", "monthly": 1, "yearly": 12}]})
    assert [b.get("data-item") for b in _bars(cost_chart_svg(cost))] == ["a <b> & 'c'", "total"]


def test_the_prod_report_embeds_the_chart_of_its_estimate() -> None:
    base = preview("prod")
    inline = render_markdown("prod", base.recording, base.findings, RULES, config=base.config)
    start, end = inline.index("<svg"), inline.index("</svg>") + len("</svg>")
    bars = _bars(inline[start:end])
    estimate = base.recording.outputs["cost_estimate"].value
    assert [b.get("data-item") for b in bars] == [*(li["item"] for li in estimate["lines"]), "total"]
    assert [float(b.get("data-yearly", "")) for b in bars] == [
        *(li["yearly"] for li in estimate["lines"]),
        estimate["yearly_total"],
    ]
    linked = render_markdown("prod", base.recording, base.findings, RULES, config=base.config, cost_chart="p.svg")
    assert "<svg" not in linked
    assert "![Yearly cost per line item against the NFR-012 cap](p.svg)" in linked


def test_report_to_a_file_writes_the_chart_beside_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def cached(stack: str, root: Path | None = None) -> StackResult:
        return previewed(stack)

    monkeypatch.setattr(cli, "preview_stack", cached)
    assert cli.main(["report", "prod", "--output", str(tmp_path / "prod.md")]) == 0
    chart = tmp_path / "prod-cost.svg"
    assert "](prod-cost.svg)" in (tmp_path / "prod.md").read_text()
    assert [b.get("data-item") for b in _bars(chart.read_text())][-1] == "total"
    # A stack without an estimate gets no chart file.
    assert cli.main(["report", "dev", "--output", str(tmp_path / "dev.md")]) == 0
    assert not (tmp_path / "dev-cost.svg").exists()
