"""Read-only lookups of the tenancy the cloud stack builds on (invokes, run at every preview)."""

import pulumi
import pulumi_oci.core as oci_core
import pulumi_oci.identity as oci_identity
import pulumi_oci.objectstorage as oci_objectstorage

from components.oci.node import A1_FLEX


class AvailabilityDomainError(pulumi.RunError):
    """The configured availability domain does not exist in the provider's region."""


def _domain(names: list[str], number: int) -> str:
    if not 1 <= number <= len(names):
        raise AvailabilityDomainError(
            f"homelab:oci.availability_domain_number is {number}, but the region has "
            f"{len(names)} availability domain(s): {', '.join(names) or 'none'}"
        )
    return names[number - 1]


def availability_domain(tenancy_ocid: str, number: int, provider: pulumi.ProviderResource) -> pulumi.Output[str]:
    """The name of availability domain `number` (1-based) of the provider's region, as the region
    reports it; a number the region does not have is an error that names both."""
    domains = oci_identity.get_availability_domains_output(
        compartment_id=tenancy_ocid, opts=pulumi.InvokeOutputOptions(provider=provider)
    ).availability_domains
    return domains.apply(lambda found: _domain(sorted(d.name for d in found), number))


def object_storage_namespace(compartment_id: str, provider: pulumi.ProviderResource) -> pulumi.Output[str]:
    return oci_objectstorage.get_namespace_output(
        compartment_id=compartment_id, opts=pulumi.InvokeOutputOptions(provider=provider)
    ).namespace


def ubuntu_image(compartment_id: str, version: str, provider: pulumi.ProviderResource) -> pulumi.Output[str]:
    """The newest Canonical Ubuntu `version` platform image for A1.Flex. Instances read it only at
    creation (`ignore_changes`), so a newer image never replaces the management VM."""
    images = oci_core.get_images_output(
        compartment_id=compartment_id,
        operating_system="Canonical Ubuntu",
        operating_system_version=version,
        shape=A1_FLEX,
        sort_by="TIMECREATED",
        sort_order="DESC",
        state="AVAILABLE",
        opts=pulumi.InvokeOutputOptions(provider=provider),
    ).images
    return images.apply(lambda found: found[0].id)
