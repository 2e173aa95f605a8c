"""Simulations answer only what the provider would: no canned measurements, no impossible lookups."""

import pulumi
import pulumi_oci as oci
import pytest

from components.oci.lookups import AvailabilityDomainError, availability_domain
from homelab.engine import Recording, run_program


def _domain_program(region: str, number: int):
    def program() -> None:
        provider = oci.Provider("oci", region=region)
        pulumi.export("ad", availability_domain("ocid1.tenancy.oc1..test", number, provider))

    return program


def _run(region: str, number: int) -> Recording:
    return run_program(_domain_program(region, number), project="homelab", stack="test")


def test_a_one_domain_region_refuses_a_third_availability_domain() -> None:
    """The old simulation answered three domains for every region, so this config previewed clean."""
    with pytest.raises(AvailabilityDomainError, match=r"availability_domain_number is 3, but the region has 1"):
        _run("eu-paris-1", 3)


def test_the_lookup_answers_for_the_providers_region() -> None:
    assert _run("eu-paris-1", 1).outputs["ad"].value == "Offl:EU-PARIS-1-AD-1"
    assert _run("eu-frankfurt-1", 3).outputs["ad"].value == "Offl:EU-FRANKFURT-1-AD-3"


def test_host_measurements_are_known_after_up_in_every_view(previewed) -> None:
    for view in ("update", "first-preview"):
        result = previewed("prod")
        recording = result.recording if view == "update" else result.first_preview.recording
        assert not recording.outputs["zfs_pool_health"].known
        assert not recording.outputs["host_reboot_required"].known
