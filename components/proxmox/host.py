"""`ProxmoxHost`: the host itself — bridge, GPU passthrough preparation, PCI mapping, API consumers.

Host preparation that the provider cannot express (kernel command line, VFIO modules, driver
blacklist) runs over SSH as idempotent shell. It never reboots the host: it reports whether a
reboot is pending and the operator chooses the moment (see docs/runbooks/host-bring-up.md).
"""

import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, NotRequired, TypedDict

import pulumi
import pulumi_proxmoxve as pve
from pulumi_command import remote

from components.proxmox.hostshell import APT_GET, REFRESH_INITRAMFS, STRICT

CpuVendor = Literal["amd", "intel"]
AptRepository = Literal["no-subscription", "enterprise"]

REBOOT_MARKER = "reboot-required="
VFIO_MODULES: tuple[str, ...] = ("vfio", "vfio_iommu_type1", "vfio_pci")

# The kernel options that make a device passthrough-capable. AMD-Vi is on by default in current
# kernels (`amd_iommu=on` is not a valid value); Intel VT-d still has to be switched on.
IOMMU_KERNEL_OPTIONS: Mapping[CpuVendor, tuple[str, ...]] = {
    "amd": ("iommu=pt",),
    "intel": ("intel_iommu=on", "iommu=pt"),
}


@dataclass(frozen=True)
class BridgeSpec:
    """The host's Linux bridge guests attach to (the management bridge on a single-NIC host)."""

    name: str
    address: str
    """Host address on the bridge in CIDR form (`192.168.68.51/24`)."""
    gateway: str
    ports: tuple[str, ...]
    """Physical NICs enslaved to the bridge (`enp3s0`)."""
    adopt_existing: bool = True
    """The Proxmox installer always creates `vmbr0`: adopt it (import) instead of failing to create it."""


@dataclass(frozen=True)
class GpuPassthrough:
    """A PCI device (GPU and its audio function) handed to guests through a resource mapping."""

    mapping_name: str
    """Name VMs reference (`hostpcis[].mapping`), never a raw bus address."""
    pci_path: str
    """Bus address without the function (`0000:01:00`): covers GPU and HDMI audio."""
    device_id: str
    """`vendor:device` of the GPU function (`10de:2684`)."""
    subsystem_id: str
    iommu_group: int
    vfio_ids: tuple[str, ...]
    """Every `vendor:device` vfio-pci claims at boot (GPU and audio function)."""
    blacklisted_drivers: tuple[str, ...] = ("nouveau", "nvidia", "nvidiafb", "nvidia_drm", "snd_hda_intel")


@dataclass(frozen=True)
class ApiConsumer:
    """A least-privilege Proxmox identity for one consumer (e.g. a CSI driver): role, user, token."""

    user_id: str
    """`<name>@pve`."""
    privileges: tuple[str, ...]
    path: str = "/"
    comment: str = ""
    token_name: str = "pulumi"


NO_SUBSCRIPTION_LIST = "/etc/apt/sources.list.d/pve-no-subscription.list"
_ENTERPRISE_LINE = r"^[[:space:]]*deb[[:space:]].*enterprise\.proxmox\.com"
_DISABLE_ENTERPRISE = f"s/({_ENTERPRISE_LINE}.*)$/# \\1/".replace("(^", "^(")


def apt_sources_script(repository: AptRepository) -> str:
    """Make `apt-get update` succeed on the host; the first command of the host chain.

    A host without a subscription gets 401 from the enterprise repositories the installer enables
    (`pve-enterprise.list`, `ceph.list`), and every later `apt-get update` fails. `no-subscription`
    comments those lines out and adds Proxmox's pve-no-subscription repository for the host's
    Debian release; `enterprise` (a subscribed host) leaves the sources alone.
    """
    lines = [STRICT]
    if repository == "no-subscription":
        lines += [
            "# shellcheck disable=SC1091  # the host's release file",
            ". /etc/os-release",
            "for list in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do",
            f'  if [ -f "$list" ] && grep -qE {shlex.quote(_ENTERPRISE_LINE)} "$list"; then',
            f'    sed -i -E {shlex.quote(_DISABLE_ENTERPRISE)} "$list"',
            '    echo "disabled the enterprise repository in $list (no subscription)"',
            "  fi",
            "done",
            # Proxmox VE 9 writes deb822 `.sources` files: refuse clearly instead of a 401 later.
            "if grep -qs enterprise.proxmox.com /etc/apt/sources.list.d/*.sources"
            " && ! grep -qsi '^Enabled: *no' /etc/apt/sources.list.d/*.sources; then",
            "  echo 'deb822 enterprise sources found: disable them under Updates -> Repositories"
            " (docs/runbooks/host-bring-up.md)' >&2",
            "  exit 1",
            "fi",
            'line="deb http://download.proxmox.com/debian/pve $VERSION_CODENAME pve-no-subscription"',
            f'if [ "$(cat {NO_SUBSCRIPTION_LIST} 2>/dev/null)" != "$line" ]; then',
            f"  printf '%s\\n' \"$line\" > {NO_SUBSCRIPTION_LIST}",
            "fi",
        ]
    # Fails here, with apt's own message, when a repository still refuses the host.
    lines.append(f"{APT_GET} update")
    return "\n".join(lines)


class ProxmoxHostArgs(TypedDict):
    """Inputs of `ProxmoxHost`."""

    node_name: str
    connection: pulumi.Input[remote.ConnectionArgs]
    """SSH to the host (root) for the preparation commands."""
    bridge: BridgeSpec
    cpu_vendor: CpuVendor
    gpu: NotRequired[GpuPassthrough]
    api_consumers: NotRequired[Mapping[str, ApiConsumer]]
    """Keyed by a stable consumer name (`csi`)."""
    apt_repository: NotRequired[AptRepository]
    """`no-subscription` (default: a stock host without a subscription) or `enterprise`."""


def _ensure_file(path: str, content: str) -> str:
    """Shell that writes `content` to `path` only if it differs, and records that a reboot is due."""
    quoted_path = shlex.quote(path)
    return (
        f'if [ "$(cat {quoted_path} 2>/dev/null)" != {shlex.quote(content.rstrip(chr(10)))} ]; then '
        f"printf '%s\\n' {shlex.quote(content.rstrip(chr(10)))} > {quoted_path}; changed=1; fi"
    )


def passthrough_script(cpu_vendor: CpuVendor, gpu: GpuPassthrough | None) -> str:
    """Idempotent host preparation for PCI passthrough; prints `reboot-required=true|false`.

    Handles both boot loaders Proxmox installs: systemd-boot via proxmox-boot-tool
    (`/etc/kernel/cmdline`, ZFS root on UEFI) and GRUB (`/etc/default/grub`).
    """
    options = IOMMU_KERNEL_OPTIONS[cpu_vendor]
    lines = [STRICT, "changed=0"]
    for option in options:
        opt = shlex.quote(option)
        append_cmdline = shlex.quote(f"1s/$/ {option}/")
        append_grub = shlex.quote(f's/^GRUB_CMDLINE_LINUX_DEFAULT="/&{option} /')
        lines += [
            "if [ -f /etc/kernel/cmdline ]; then",
            f"  if ! grep -qw -- {opt} /etc/kernel/cmdline; then "
            f"sed -i {append_cmdline} /etc/kernel/cmdline; changed=1; cmdline=1; fi",
            "else",
            f"  if ! grep -q -- {opt} /etc/default/grub; then "
            f"sed -i {append_grub} /etc/default/grub; "
            "changed=1; grub=1; fi",
            "fi",
        ]
    lines.append(_ensure_file("/etc/modules-load.d/vfio.conf", "\n".join(VFIO_MODULES)))
    if gpu is not None:
        ids = ",".join(gpu.vfio_ids)
        vfio_conf = f"options vfio-pci ids={ids} disable_vga=1\n" + "".join(
            f"softdep {driver} pre: vfio-pci\n" for driver in gpu.blacklisted_drivers
        )
        lines.append(_ensure_file("/etc/modprobe.d/vfio.conf", vfio_conf))
        blacklist = "".join(f"blacklist {driver}\n" for driver in gpu.blacklisted_drivers)
        lines.append(_ensure_file("/etc/modprobe.d/blacklist-passthrough-gpu.conf", blacklist))
    lines += [
        'if [ "${cmdline:-0}" = 1 ]; then proxmox-boot-tool refresh >/dev/null; fi',
        'if [ "${grub:-0}" = 1 ]; then update-grub >/dev/null 2>&1; fi',
        f'if [ "$changed" = 1 ]; then {REFRESH_INITRAMFS}; fi',
        # Pending until the running kernel has every option (a reboot applies files and cmdline).
        "pending=$changed",
        *(f"grep -qw -- {shlex.quote(o)} /proc/cmdline || pending=1" for o in options),
        f'if [ "$pending" = 1 ]; then echo {REBOOT_MARKER}true; else echo {REBOOT_MARKER}false; fi',
    ]
    return "\n".join(lines)


def passthrough_undo_script(gpu: GpuPassthrough | None) -> str:
    """Removes only the files this component wrote; the kernel options stay (harmless, and editing
    the boot loader on delete could leave a host unbootable)."""
    files = ["/etc/modules-load.d/vfio.conf"]
    if gpu is not None:
        files += ["/etc/modprobe.d/vfio.conf", "/etc/modprobe.d/blacklist-passthrough-gpu.conf"]
    return f"{STRICT}\nrm -f {' '.join(shlex.quote(f) for f in files)}\n{REFRESH_INITRAMFS}"


def _reboot_required(stdout: str) -> bool:
    return any(line.strip() == f"{REBOOT_MARKER}true" for line in stdout.splitlines())


class ProxmoxHost(pulumi.ComponentResource):
    """The Proxmox node's own configuration."""

    bridge_name: pulumi.Output[str]
    reboot_required: pulumi.Output[bool]
    gpu_mapping_name: pulumi.Output[str] | None
    api_tokens: pulumi.Output[dict[str, str]]
    """Full API token (`user@pve!name=secret`) per consumer key; secret."""
    preparation: remote.Command
    host_chain: remote.Command
    """The last host command that installs packages or rebuilds the boot chain: other components'
    host commands that do either depend on it (`ZfsPool` `serialize_after`), so none overlap."""

    def __init__(self, name: str, args: ProxmoxHostArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("homelab:proxmox:ProxmoxHost", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        node = args["node_name"]
        spec = args["bridge"]
        gpu = args.get("gpu")

        # Guests and the API itself sit on this bridge: protect it, and adopt the installer's one.
        # An import fails unless every input matches the live bridge, and the installer writes no
        # comment: an adopted bridge gets none (set it by hand afterwards if wanted).
        bridge = pve.network.linux.Bridge(
            f"{name}-{spec.name}",
            node_name=node,
            name=spec.name,
            address=spec.address,
            gateway=spec.gateway,
            ports=list(spec.ports),
            autostart=True,
            comment=None if spec.adopt_existing else "Guest bridge (managed by Pulumi)",
            opts=pulumi.ResourceOptions.merge(
                child,
                # Retained: removing the component (or the stack) must never delete the management
                # bridge, or the host drops off the network.
                pulumi.ResourceOptions(
                    protect=True,
                    retain_on_delete=True,
                    import_=f"{node}:{spec.name}" if spec.adopt_existing else None,
                ),
            ),
        )
        self.bridge_name = bridge.name

        apt = remote.Command(
            f"{name}-apt",
            connection=args["connection"],
            create=apt_sources_script(args.get("apt_repository", "no-subscription")),
            opts=child,
        )
        self.preparation = remote.Command(
            f"{name}-passthrough",
            connection=args["connection"],
            create=passthrough_script(args["cpu_vendor"], gpu),
            delete=passthrough_undo_script(gpu),
            # On a replacement, undo first: the default (create, then delete the old one) would
            # remove the VFIO files the new create just wrote. After `apt`: a package install can
            # rebuild the initramfs too.
            opts=pulumi.ResourceOptions.merge(
                child, pulumi.ResourceOptions(delete_before_replace=True, depends_on=[apt])
            ),
        )
        self.host_chain = self.preparation
        self.reboot_required = self.preparation.stdout.apply(_reboot_required)

        self.gpu_mapping_name = None
        if gpu is not None:
            mapping = pve.hardware.mapping.Pci(
                f"{name}-{gpu.mapping_name}",
                name=gpu.mapping_name,
                comment="GPU for passthrough (managed by Pulumi)",
                maps=[
                    pve.hardware.mapping.PciMapArgs(
                        id=gpu.device_id,
                        node=node,
                        path=gpu.pci_path,
                        iommu_group=gpu.iommu_group,
                        subsystem_id=gpu.subsystem_id,
                    )
                ],
                opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[self.preparation])),
            )
            self.gpu_mapping_name = mapping.name

        tokens: dict[str, pulumi.Output[str]] = {}
        for key, consumer in sorted(args.get("api_consumers", {}).items()):
            tokens[key] = self._api_consumer(name, key, consumer, child)
        self.api_tokens = pulumi.Output.secret(pulumi.Output.all(**tokens)) if tokens else pulumi.Output.secret({})

        self.register_outputs(
            {
                "bridge_name": self.bridge_name,
                "reboot_required": self.reboot_required,
                "gpu_mapping_name": self.gpu_mapping_name,
                "api_tokens": self.api_tokens,
                "host_chain": self.host_chain.id,
            }
        )

    def _api_consumer(
        self, name: str, key: str, consumer: ApiConsumer, child: pulumi.ResourceOptions
    ) -> pulumi.Output[str]:
        role = pve.RoleLegacy(
            f"{name}-{key}-role",
            role_id=f"Homelab{key.title().replace('-', '')}",
            privileges=sorted(consumer.privileges),
            opts=child,
        )
        user = pve.UserLegacy(
            f"{name}-{key}-user",
            user_id=consumer.user_id,
            comment=consumer.comment or f"{key} (managed by Pulumi)",
            enabled=True,
            acls=[pve.UserLegacyAclArgs(path=consumer.path, role_id=role.role_id, propagate=True)],
            opts=child,
        )
        # No privilege separation: the token has exactly the user's (already minimal) rights.
        token = pve.user.Token(
            f"{name}-{key}-token",
            user_id=user.user_id,
            token_name=consumer.token_name,
            privileges_separation=False,
            comment=f"{key} (managed by Pulumi)",
            opts=child,
        )
        return pulumi.Output.secret(token.value.apply(lambda v: v or ""))
