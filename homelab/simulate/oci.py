"""What the OCI provider (pulumi_oci 5.5.0) would answer: computed ids, addresses and lookups."""

import base64
import ipaddress
from collections.abc import Mapping
from typing import Any

from homelab.simulate import fake_hex, fake_ocid, invoke, invoke_with_provider, resource_id_of, resource_output

REGION = "eu-paris-1"
NAMESPACE = "axofflinens1"


def _public_ip(seed: str) -> str:
    """A stable address in TEST-NET-3 (RFC 5737): never a real host."""
    return str(ipaddress.IPv4Address("203.0.113.0") + int(fake_hex(seed, 4), 16) % 250 + 2)


@resource_output("oci:Core/vcn:Vcn")
def _vcn(name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    return {
        "defaultSecurityListId": fake_ocid("securitylist", name),
        "defaultRouteTableId": fake_ocid("routetable", name),
        "defaultDhcpOptionsId": fake_ocid("dhcpoptions", name),
        "state": "AVAILABLE",
    }


@resource_output("oci:Bastion/bastion:Bastion")
def _bastion(name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    return {"privateEndpointIpAddress": "10.20.1.250", "state": "ACTIVE"}


@resource_output("oci:Core/instance:Instance")
def _instance(name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    vnic = inputs.get("createVnicDetails") or {}
    public = vnic.get("assignPublicIp") == "true"
    return {
        "privateIp": vnic.get("privateIp", "10.20.1.100"),
        "publicIp": _public_ip(name) if public else "",
        "bootVolumeId": fake_ocid("bootvolume", name),
        "region": REGION,
        "state": "RUNNING",
    }


@resource_output("oci:Core/publicIp:PublicIp")
def _reserved_ip(name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    return {"ipAddress": _public_ip(name), "scope": "REGION", "state": "ASSIGNED"}


@resource_output("oci:Core/volume:Volume")
def _volume(name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    return {"state": "AVAILABLE"}


@resource_output("oci:Bastion/session:Session")
def _session(name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    return {"state": "ACTIVE"}


# Commercial regions with three availability domains; every other region has one. The lookup
# answers for the region the provider is configured for, so config that names an availability
# domain the region lacks fails offline exactly as it would against the real API.
THREE_AD_REGIONS = frozenset({"us-ashburn-1", "us-phoenix-1", "eu-frankfurt-1", "uk-london-1"})


@invoke_with_provider("oci:Identity/getAvailabilityDomains:getAvailabilityDomains")
def _availability_domains(args: dict[str, Any], provider: Mapping[str, Any]) -> dict[str, Any]:
    compartment = args.get("compartmentId", "")
    region = str(provider.get("region") or REGION)
    count = 3 if region in THREE_AD_REGIONS else 1
    return {
        "compartmentId": compartment,
        "id": fake_ocid("adlist", compartment + region),
        "availabilityDomains": [
            {
                "id": fake_ocid("availabilitydomain", f"{region}{n}"),
                "name": f"Offl:{region.upper()}-AD-{n}",
                "compartmentId": compartment,
            }
            for n in range(1, count + 1)
        ],
    }


@invoke("oci:ObjectStorage/getNamespace:getNamespace")
def _namespace(args: dict[str, Any]) -> dict[str, Any]:
    return {"id": NAMESPACE, "namespace": NAMESPACE, "compartmentId": args.get("compartmentId")}


@invoke("oci:Core/getImages:getImages")
def _images(args: dict[str, Any]) -> dict[str, Any]:
    os_name = args.get("operatingSystem", "Canonical Ubuntu")
    version = args.get("operatingSystemVersion", "24.04")
    return {
        "id": fake_ocid("imagelist", f"{os_name}{version}"),
        "compartmentId": args.get("compartmentId"),
        "images": [
            {
                "id": fake_ocid("image", f"{os_name}{version}"),
                "displayName": f"{os_name.replace(' ', '-')}-{version}-aarch64-2026.06.01-0",
                "operatingSystem": os_name,
                "operatingSystemVersion": version,
                "state": "AVAILABLE",
            }
        ],
    }


@invoke("oci:Core/getVnicAttachments:getVnicAttachments")
def _vnic_attachments(args: dict[str, Any]) -> dict[str, Any]:
    instance = str(args.get("instanceId", ""))
    return {
        "id": fake_ocid("vnicattachmentlist", instance),
        "compartmentId": args.get("compartmentId"),
        "vnicAttachments": [
            {
                "id": fake_ocid("vnicattachment", instance),
                "instanceId": instance,
                "vnicId": fake_ocid("vnic", instance),
                "state": "ATTACHED",
            }
        ],
    }


@invoke("oci:Core/getPrivateIps:getPrivateIps")
def _private_ips(args: dict[str, Any]) -> dict[str, Any]:
    vnic = str(args.get("vnicId", ""))
    address = args.get("ipAddress", "10.20.1.100")
    return {
        "id": fake_ocid("privateiplist", vnic),
        "privateIps": [{"id": fake_ocid("privateip", vnic + str(address)), "ipAddress": address, "isPrimary": True}],
    }


@resource_output("oci:NetworkLoadBalancer/networkLoadBalancer:NetworkLoadBalancer")
def _network_load_balancer(name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """A public load balancer answers on its pinned private address and one public address: the
    reserved IP it was given (the simulated id of a resource is `<name>-id`, the simulated address
    of a reserved IP derives from its name) or an ephemeral one."""
    addresses: list[dict[str, Any]] = []
    private = inputs.get("assignedPrivateIpv4")
    if private:
        addresses.append({"ipAddress": private, "ipVersion": "IPV4", "isPublic": False, "reservedIps": []})
    if not inputs.get("isPrivate", True):
        reserved = [r["id"] for r in inputs.get("reservedIps") or [] if r.get("id")]
        public = _public_ip(reserved[0].removesuffix("-id")) if reserved else _public_ip(name)
        addresses.append(
            {
                "ipAddress": public,
                "ipVersion": "IPV4",
                "isPublic": True,
                "reservedIps": [{"id": r} for r in reserved],
            }
        )
    return {"ipAddresses": addresses, "state": "ACTIVE"}


# A Customer Secret Key's id is the S3 access key (40 hex characters); its `key` (the secret half)
# is returned once, at creation, as 44 base64 characters.
@resource_id_of("oci:Identity/customerSecretKey:CustomerSecretKey")
def _customer_secret_key_id(name: str, inputs: dict[str, Any]) -> str:
    return fake_hex(f"customer-secret-key-{name}", 40)


@resource_output("oci:Identity/customerSecretKey:CustomerSecretKey")
def _customer_secret_key(name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    secret = bytes.fromhex(fake_hex(f"customer-secret-{name}", 64))
    return {"key": base64.b64encode(secret[:32] + secret[:1]).decode(), "state": "ACTIVE"}
