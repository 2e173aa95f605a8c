"""Where Talos nodes run: the one seam between `TalosCluster` and a hypervisor or cloud.

`TalosCluster` owns everything Talos (Image Factory schematic, machine secrets, machine
configuration, apply, bootstrap, health, kubeconfig, talosconfig) once. A substrate only knows how
to put a machine with a Talos boot image somewhere: a Proxmox VM booting the nocloud image, or an
OCI A1.Flex instance booting an imported Oracle image with the machine configuration as user data.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

import pulumi

NodeRole = Literal["controlplane", "worker"]


@dataclass(frozen=True)
class TalosNode:
    """One node of a cluster, keyed by its stable name (never by a list position)."""

    name: str
    role: NodeRole
    address: str
    """The IPv4 address the node has from its first boot (static; no prefix)."""
    cores: int
    memory_mb: int
    disk_gb: int
    install_disk: str = "/dev/sda"


@dataclass(frozen=True)
class StaticNetwork:
    """Static IPv4 addressing shared by every node of a cluster (home LAN); clouds use DHCP instead."""

    prefix_length: int
    gateway: str
    nameservers: tuple[str, ...]


@dataclass(frozen=True)
class BootImage:
    """The Talos image every node of a cluster boots and installs."""

    talos_version: str
    schematic_id: pulumi.Output[str]
    installer_image: pulumi.Output[str]
    """`factory.talos.dev/<platform>-installer/<schematic>:<version>`, written into machine.install.image."""
    disk_image_url: pulumi.Output[str]
    """The Image Factory URL of the substrate's boot disk image for this platform and architecture."""


class TalosSubstrate(Protocol):
    """What `TalosCluster` asks of the place its nodes run."""

    # Read-only members: a plain attribute, a frozen dataclass field or a property all satisfy them.
    @property
    def platform(self) -> str:
        """Image Factory platform of the boot image (`nocloud`, `oracle`)."""
        ...

    @property
    def architecture(self) -> str:
        """CPU architecture of the nodes (`amd64`, `arm64`)."""
        ...

    @property
    def delivers_config_at_boot(self) -> bool:
        """True when the machine configuration reaches the node as user data at creation (OCI); then
        `TalosCluster` still applies it over the Talos API for later changes."""
        ...

    # Optional (not part of the protocol, so existing substrates stay valid):
    #   required_extensions: tuple[str, ...]
    #     official Image Factory extensions the substrate's machines need (Proxmox: the QEMU guest
    #     agent); read through `required_extensions(substrate)`.

    def config_patches(self, node: TalosNode) -> list[str]:
        """Machine-configuration patches this substrate needs (YAML or JSON documents)."""
        ...

    def create_machines(
        self,
        cluster: pulumi.ComponentResource,
        image: BootImage,
        nodes: dict[str, TalosNode],
        machine_configurations: dict[str, pulumi.Output[str]],
    ) -> Mapping[str, pulumi.Resource]:
        """Create the boot image resources and one machine per node, all parented to `cluster`.

        Returns the machine of each node, keyed like `nodes`: a resource (a VM, or a component around
        an instance) that `TalosCluster` waits for. A machine with a `public_ip` output (OCI) has it
        collected into `TalosCluster.node_public_ips`. Providers are not the substrate's business:
        they reach its resources through `cluster`'s `opts`. Changing `image` after creation must not
        replace a machine: upgrades go through the Talos API.
        """
        ...


def required_extensions(substrate: TalosSubstrate) -> tuple[str, ...]:
    """The Image Factory extensions a substrate needs in every boot image (empty if it declares none)."""
    return tuple(getattr(substrate, "required_extensions", ()))
