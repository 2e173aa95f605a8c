"""Explicit providers for the cloud stack (default providers are disabled project-wide)."""

from dataclasses import dataclass

import pulumi
import pulumi_oci


@dataclass(frozen=True)
class OciProviderArgs:
    """An API-key identity of the tenancy (the private key is a secret)."""

    region: str
    tenancy_ocid: str
    user_ocid: str
    fingerprint: str
    private_key: pulumi.Input[str]


def oci_provider(name: str, args: OciProviderArgs) -> pulumi_oci.Provider:
    return pulumi_oci.Provider(
        name,
        auth="ApiKey",
        region=args.region,
        tenancy_ocid=args.tenancy_ocid,
        user_ocid=args.user_ocid,
        fingerprint=args.fingerprint,
        private_key=pulumi.Output.secret(args.private_key),
        # Always Free capacity errors ("Out of host capacity") are retried for a while, not forever.
        retry_duration_seconds=600,
        opts=pulumi.ResourceOptions(additional_secret_outputs=["privateKey"]),
    )
