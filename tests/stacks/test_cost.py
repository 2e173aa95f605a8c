"""The cost model (homelab:cost in prod): validation, the yearly estimate per mode, where it shows."""

from pathlib import Path
from typing import Any

import pytest

from homelab.budget import budget_lines
from homelab.cli import main
from homelab.stackrun import run_stack
from stacks.capacity import Guest, HostLedger
from stacks.config import ConfigError
from stacks.cost import CapConfig, CostConfig, estimate
from tests.policies.previews import preview
from tests.stacks.helpers import count_registrations

LEDGER = HostLedger(
    guests=(
        Guest("prod", "prod", 16384, 8, ("normal", "testing", "gaming")),
        Guest("gaming", "prod", 32768, 8, ("gaming",)),
    ),
    reservations=(),
    host_memory_mb=65536,
)


def test_gpu_mode_costs_more_per_hour_and_total_adds_up():
    cost = CostConfig(hours_per_month={"normal": 100, "testing": 100, "gaming": 100})
    value = estimate(LEDGER, 32, ("gaming",), cost)
    monthly = {line["item"].split(" (")[0]: line["monthly"] for line in value["lines"]}
    monthly["cloud: OCI Always Free"] = monthly.pop("cloud: not counted")
    assert (
        monthly["electricity: gaming mode"]
        > monthly["electricity: normal mode"]
        == monthly["electricity: testing mode"]
    )
    # normal: (40 idle + 14 disks + 90 x 8/32 cores) = 76.5 W x 100 h = 7.65 kWh at 0.30/kWh = 2.295 a month
    assert monthly["electricity: normal mode"] == pytest.approx(2.295, abs=0.01)
    assert monthly["cloud: OCI Always Free"] == 0  # no cloud summary given: the line says it is not counted
    assert value["yearly_total"] == pytest.approx(sum(line["yearly"] for line in value["lines"]), abs=0.05)


def test_without_a_gpu_no_mode_pays_for_it():
    cost = CostConfig()
    with_gpu = estimate(LEDGER, 32, ("gaming",), cost)["yearly_total"]
    without = estimate(LEDGER, 32, (), cost)["yearly_total"]
    assert with_gpu - without == pytest.approx(250 / 1000 * 44 * 0.30 * 12, abs=0.1)


def test_prod_exports_the_estimate_and_the_preview_shows_it():
    output = preview("prod").recording.outputs["cost_estimate"]
    assert output.known and not output.secret
    assert output.value["currency"] == "EUR" and output.value["yearly_total"] > 0
    # The cloud line comes from the cloud stack's Always Free summary (it fits: 0).
    cloud = [line for line in output.value["lines"] if line["item"].startswith("cloud:")]
    assert cloud == [{"item": "cloud: OCI Always Free (within the allowance)", "monthly": 0.0, "yearly": 0.0}]
    assert output.value["cap"]["yearly"] == 1000 and output.value["cap"]["currency"] == "USD"
    assert output.value["cap"]["within"] is True


def _usage(**used: float) -> dict[str, Any]:
    """An `always_free_usage` summary at the default allowance with some items used beyond it."""
    quota = {"a1_ocpus": 2, "a1_memory_gb": 12, "block_storage_gb": 200, "e2_micro_instances": 2}
    return {item: {"used": used.get(item, limit), "quota": limit} for item, limit in quota.items()} | {
        "block_storage_while_replacing_gb": {"used": 250, "quota": 200},
        "within_quota": not used,
    }


def test_the_cloud_line_is_zero_within_the_allowance_and_list_priced_beyond_it():
    cost = CostConfig(currency="USD")
    within = estimate(LEDGER, 32, (), cost, _usage())
    assert _line(within, "cloud:") == ("cloud: OCI Always Free (within the allowance)", 0.0)
    # 2 OCPU and 12 GB over: 2 x 7.44 + 12 x 1.116 = 28.27 USD a month; 50 GB of block storage at 0.0425.
    over = estimate(LEDGER, 32, (), cost, _usage(a1_ocpus=4, a1_memory_gb=24, block_storage_gb=250))
    item, monthly = _line(over, "cloud:")
    assert item == "cloud: OCI over the Always Free allowance (a1_ocpus +2, a1_memory_gb +12, block_storage_gb +50)"
    assert monthly == pytest.approx(2 * 7.44 + 12 * 1.116 + 50 * 0.0425, abs=0.01)
    assert over["yearly_total"] - within["yearly_total"] == pytest.approx(monthly * 12, abs=0.05)
    # What cannot be bought is named, not priced as 0 silently.
    micro = estimate(LEDGER, 32, (), cost, _usage(e2_micro_instances=3))
    assert _line(micro, "cloud:") == ("cloud: OCI over the Always Free allowance (e2_micro_instances +1 not priced)", 0)


def test_list_prices_are_overridable_and_converted_into_the_estimate_currency():
    usage = _usage(a1_ocpus=3)
    usd = CostConfig(currency="USD", oci_prices_usd={"a1_ocpus": 10})
    eur = CostConfig(currency="EUR", usd_rates={"EUR": 1.25}, oci_prices_usd={"a1_ocpus": 10})
    assert _line(estimate(LEDGER, 32, (), usd, usage), "cloud:")[1] == 10
    assert _line(estimate(LEDGER, 32, (), eur, usage), "cloud:")[1] == 8  # 10 USD at 1.25 USD/EUR


def test_the_total_is_set_against_the_cap_in_its_currency():
    cheap = estimate(LEDGER, 32, (), CostConfig(), _usage())
    assert cheap["cap"]["yearly_total_in_cap_currency"] == pytest.approx(cheap["yearly_total"] * 1.16, abs=0.01)
    assert cheap["cap"]["within"] is True
    dear = CostConfig(electricity_per_kwh=2.5, cap=CapConfig(yearly=1000, currency="EUR"))
    over = estimate(LEDGER, 32, ("gaming",), dear, _usage())
    assert over["yearly_total"] > 1000 and over["cap"]["within"] is False
    assert over["cap"]["yearly_total_in_cap_currency"] == over["yearly_total"]


def _line(value: dict[str, Any], prefix: str) -> tuple[str, float]:
    (line,) = [li for li in value["lines"] if li["item"].startswith(prefix)]
    return line["item"], line["monthly"]


@pytest.mark.parametrize(
    ("cost", "expected"),
    [
        ({"electricity_per_kwh": -0.1}, "homelab:cost.electricity_per_kwh: must be at least 0.0, got -0.1"),
        ({"power": {"gpu_w": -5}}, "homelab:cost.power.gpu_w: must be at least 0"),
        ({"currency": "XYZ"}, "homelab:cost.currency: "),
        (
            {"hours_per_month": {"normal": 800, "testing": 0, "gaming": 0}},
            "hours_per_month.normal must be between 0 and 744, got 800",
        ),
        ({"hours_per_month": {"normal": 500, "testing": 200, "gaming": 100}}, "add up to 800, more than the 744 hours"),
        ({"hours_per_month": {"normal": 500, "testing": 100}}, "has no hours for mode gaming"),
        ({"cap": {"currency": "XYZ"}}, "homelab:cost.cap.currency: "),
        ({"cap": {"yearly": -1}}, "homelab:cost.cap.yearly: must be more than 0"),
        ({"usd_rates": {"EUR": 0}}, "homelab:cost.usd_rates.EUR: must be more than 0"),
        ({"usd_rates": {"XYZ": 1.1}}, "homelab:cost.usd_rates.XYZ"),
        ({"oci_prices_usd": {"a1_ocpus": -1}}, "homelab:cost.oci_prices_usd.a1_ocpus: must be at least 0"),
        ({"currency": "GBP"}, "usd_rates.GBP is required: currency is GBP"),
        ({"cap": {"currency": "CHF"}}, "usd_rates.CHF is required: cap.currency is CHF"),
    ],
)
def test_bad_cost_config_is_one_error_naming_the_key(cost, expected):
    with count_registrations() as seen, pytest.raises(ConfigError) as error:
        run_stack("prod", overrides={"cost": cost})
    assert expected in str(error.value)
    assert str(error.value).startswith("homelab:cost")
    assert seen == []


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        ("electricity_per_kwh: -0.3", "homelab:cost.electricity_per_kwh: must be at least 0.0, got -0.3"),
        ("power: {cpu_w: -1}", "homelab:cost.power.cpu_w: must be at least 0.0, got -1"),
        ("hours_per_month: {normal: 745, testing: 0, gaming: 0}", "hours_per_month.normal must be between 0 and 744"),
        ("currency: EURO", "homelab:cost.currency: "),
        ("hours_per_month: {normal: 600, gaming: 44}", "hours_per_month has no hours for mode testing"),
    ],
)
def test_bad_cost_input_exits_2_with_one_line_and_registers_nothing(
    isolated_project: Path, capsys: pytest.CaptureFixture[str], section: str, expected: str
) -> None:
    """The issue's bad inputs through `homelab preview prod`: exit 2, one line naming the key, no traceback."""
    path = isolated_project / "Pulumi.prod.yaml"
    path.write_text(path.read_text() + f"  homelab:cost:\n    {section}\n")
    with count_registrations() as seen:
        code = main(["--project-dir", str(isolated_project), "preview", "prod"])
    err = capsys.readouterr().err
    assert code == 2
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("homelab: prod: homelab:cost") and expected in lines[0], lines
    assert seen == []


def test_the_preview_budget_block_shows_the_table_and_the_total_against_the_cap():
    recording = preview("prod").recording
    value = recording.outputs["cost_estimate"].value
    lines = budget_lines(recording)
    start = lines.index("  Cost (NFR-012), in EUR:")
    rows = lines[start + 2 : start + 2 + len(value["lines"])]
    for row, item in zip(rows, value["lines"], strict=True):
        assert row.split()[-2:] == [f"{item['monthly']:,.2f}", f"{item['yearly']:,.2f}"], row
        assert row.strip().startswith(item["item"])
    assert lines[start + 2 + len(value["lines"])].split()[-1] == f"{value['yearly_total']:,.2f}"
    assert (
        lines[start + 3 + len(value["lines"])].strip().startswith(f"Yearly total: {value['yearly_total']:,.2f} EUR (")
    )
    assert "of the 1,000.00 USD cap (NFR-012): within it" in lines[start + 3 + len(value["lines"])]
