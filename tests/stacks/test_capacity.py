"""The host capacity ledger (NFR-010): mode totals, the hard 64 GB limit, policy config."""

import pytest

from stacks.capacity import (
    CapacityError,
    Guest,
    HostLedger,
    Reservation,
    guests_as_output,
    guests_from_output,
    ledger_from_stack_files,
    policy_config_for,
)
from stacks.config.base import ConfigError

RESERVED = (Reservation("proxmox", 4096), Reservation("zfs-arc", 8192))
PROD = (
    Guest("prod-cp-1", "prod", 4096, 2, ("normal", "testing", "gaming")),
    Guest("prod-worker-1", "prod", 12288, 6, ("normal", "testing", "gaming")),
    Guest("gaming", "prod", 32768, 8, ("gaming",)),
)
DEV = (Guest("dev-cp-1", "dev", 4096, 2, ("testing",)),)


def test_mode_totals_match_the_prd_arithmetic():
    ledger = HostLedger(guests=PROD + DEV, reservations=RESERVED)
    assert ledger.mode_totals_mb() == {"normal": 28672, "testing": 32768, "gaming": 61440}
    summary = ledger.summary()
    assert summary["modes"]["normal"]["within_target"] is True
    assert summary["modes"]["testing"]["within_target"] is True
    # 16 GB PROD + 32 GB gaming + 12 GB reserved = 60 GB: over the PRD's ≈48 GB, under the 64 GB host.
    assert summary["modes"]["gaming"]["within_target"] is False
    assert summary["modes"]["gaming"]["within_host"] is True
    ledger.check()


def test_a_mode_over_the_host_is_an_error_naming_the_mode():
    big = Guest("dev-cp-1", "dev", 40000, 2, ("testing",))
    with pytest.raises(CapacityError, match="host mode 'testing' needs 68672 MB but the host has 65536 MB"):
        HostLedger(guests=(*PROD, big), reservations=RESERVED).check()


def test_guests_round_trip_through_a_stack_output():
    assert guests_from_output(guests_as_output(DEV)) == DEV
    with pytest.raises(ConfigError, match="exports no `host_guests`"):
        guests_from_output(None)
    with pytest.raises(ValueError, match="unknown host mode"):
        guests_from_output([{"name": "x", "stack": "dev", "memory_mb": 1, "cores": 1, "modes": ["party"]}])


def test_policy_config_counts_only_other_stacks_plus_reservations():
    ledger = HostLedger(guests=PROD + DEV, reservations=RESERVED)
    prod = policy_config_for("prod", ledger)
    assert prod["otherStacksMb"] == {"normal": 0, "testing": 4096, "gaming": 0}
    assert prod["reservedMb"] == 12288 and prod["hostMemoryMb"] == 65536
    dev = policy_config_for("dev", ledger)
    assert dev["otherStacksMb"] == {"normal": 16384, "testing": 16384, "gaming": 49152}


def test_ledger_from_the_committed_stack_files():
    ledger = ledger_from_stack_files()
    assert {g.name for g in ledger.guests} == {"dev-cp-1", "prod-cp-1", "prod-worker-1", "gaming"}
    assert ledger.mode_totals_mb() == {"normal": 28672, "testing": 32768, "gaming": 61440}
    assert policy_config_for("prod")["otherStacksMb"]["testing"] == 4096


def test_a_vm_id_used_by_two_stacks_is_an_error_naming_both():
    prod_node = Guest("prod-cp-1", "prod", 4096, 2, ("normal",), vm_id=201)
    dev_node = Guest("dev-cp-1", "dev", 4096, 2, ("testing",), vm_id=201)
    with pytest.raises(CapacityError, match=r"VM id 201 is used by prod-cp-1 \(prod\) and dev-cp-1 \(dev\)"):
        HostLedger(guests=(prod_node, dev_node), reservations=RESERVED).check()
    # The id travels with the dev stack's exported guests, which is where prod finds the clash.
    assert guests_from_output(guests_as_output((dev_node,))) == (dev_node,)


def test_committed_stack_files_use_distinct_vm_ids():
    ledger = ledger_from_stack_files()
    assert all(g.vm_id is not None for g in ledger.guests)
    assert ledger.vm_id_conflicts() == {}
