"""The cost model (homelab:cost in prod): validation, the yearly estimate per mode, where it shows."""

import pytest

from homelab.stackrun import run_stack
from stacks.capacity import Guest, HostLedger
from stacks.config import ConfigError
from stacks.cost import CostConfig, estimate
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
    assert (
        monthly["electricity: gaming mode"]
        > monthly["electricity: normal mode"]
        == monthly["electricity: testing mode"]
    )
    # normal: (40 idle + 14 disks + 90 x 8/32 cores) = 76.5 W x 100 h = 7.65 kWh at 0.30/kWh = 2.295 a month
    assert monthly["electricity: normal mode"] == pytest.approx(2.295, abs=0.01)
    assert monthly["cloud: OCI Always Free"] == 0
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
    ],
)
def test_bad_cost_config_is_one_error_naming_the_key(cost, expected):
    with count_registrations() as seen, pytest.raises(ConfigError) as error:
        run_stack("prod", overrides={"cost": cost})
    assert expected in str(error.value)
    assert str(error.value).startswith("homelab:cost")
    assert seen == []
