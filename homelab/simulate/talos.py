"""What the Talos provider (pulumiverse_talos 0.8.1) would answer: secrets, configs, URLs, access."""

import base64
import hashlib
import json
from typing import Any

from homelab.simulate import fake_hex, invoke, resource_id_of, resource_output

FACTORY = "https://factory.talos.dev"


def _pem(kind: str, seed: str) -> str:
    """A PEM-shaped, base64-encoded blob (Talos stores certificates and keys base64-encoded)."""
    body = base64.b64encode(bytes.fromhex(fake_hex(f"{kind}:{seed}", 64)) * 8).decode()
    pem = f"-----BEGIN {kind}-----\n{body}\n-----END {kind}-----\n"
    return base64.b64encode(pem.encode()).decode()


def _pair(seed: str) -> dict[str, str]:
    return {"cert": _pem("CERTIFICATE", seed), "key": _pem("EC PRIVATE KEY", seed)}


@resource_output("talos:machine/secrets:Secrets")
def _secrets(name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    return {
        "machineSecrets": {
            "certs": {
                "etcd": _pair(f"{name}/etcd"),
                "k8s": _pair(f"{name}/k8s"),
                "k8sAggregator": _pair(f"{name}/k8s-aggregator"),
                "k8sServiceaccount": {"key": _pem("EC PRIVATE KEY", f"{name}/sa")},
                "os": _pair(f"{name}/os"),
            },
            "cluster": {"id": fake_hex(f"{name}/cluster-id", 43), "secret": fake_hex(f"{name}/cluster-secret", 43)},
            "secrets": {
                "bootstrapToken": f"{fake_hex(name + '/bt1', 6)}.{fake_hex(name + '/bt2', 16)}",
                "secretboxEncryptionSecret": base64.b64encode(bytes.fromhex(fake_hex(f"{name}/sbx", 64))).decode(),
            },
            "trustdinfo": {"token": f"{fake_hex(name + '/td1', 6)}.{fake_hex(name + '/td2', 16)}"},
        },
        "clientConfiguration": {
            "caCertificate": _pem("CERTIFICATE", f"{name}/os"),
            "clientCertificate": _pem("CERTIFICATE", f"{name}/admin"),
            "clientKey": _pem("ED25519 PRIVATE KEY", f"{name}/admin"),
        },
    }


@resource_output("talos:machine/configurationApply:ConfigurationApply")
def _configuration_apply(name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    config = str(inputs.get("machineConfigurationInput", ""))
    return {
        "machineConfiguration": config,
        "resolvedApplyMode": "auto",
    }


@resource_output("talos:cluster/kubeconfig:Kubeconfig")
def _kubeconfig(name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    node = str(inputs.get("endpoint") or inputs.get("node") or "127.0.0.1")
    cluster = name.removesuffix("-kubeconfig")
    ca = _pem("CERTIFICATE", f"{cluster}/k8s")
    cert = _pem("CERTIFICATE", f"{cluster}/kube-admin")
    key = _pem("EC PRIVATE KEY", f"{cluster}/kube-admin")
    kubeconfig = (
        "apiVersion: v1\n"
        "kind: Config\n"
        "clusters:\n"
        f"- name: {cluster}\n"
        f"  cluster:\n    server: https://{node}:6443\n    certificate-authority-data: {ca}\n"
        "users:\n"
        f"- name: admin@{cluster}\n"
        f"  user:\n    client-certificate-data: {cert}\n    client-key-data: {key}\n"
        "contexts:\n"
        f"- name: admin@{cluster}\n  context:\n    cluster: {cluster}\n    namespace: default\n"
        f"    user: admin@{cluster}\n"
        f"current-context: admin@{cluster}\n"
    )
    return {
        "kubeconfigRaw": kubeconfig,
        "kubernetesClientConfiguration": {
            "host": f"https://{node}:6443",
            "caCertificate": ca,
            "clientCertificate": cert,
            "clientKey": key,
        },
    }


@invoke("talos:imageFactory/getUrls:getUrls")
def _urls(args: dict[str, Any]) -> dict[str, Any]:
    schematic = str(args.get("schematicId", ""))
    version = str(args.get("talosVersion", ""))
    platform = str(args.get("platform") or "metal")
    arch = str(args.get("architecture") or "amd64")
    image = f"{FACTORY}/image/{schematic}/{version}"
    disk_suffix = "raw.xz" if platform in ("nocloud", "oracle", "aws", "gcp", "azure") else "raw.zst"
    return {
        "id": fake_hex(f"{schematic}/{version}/{platform}/{arch}"),
        "architecture": arch,
        "platform": platform,
        "schematicId": schematic,
        "talosVersion": version,
        "urls": {
            "installer": f"factory.talos.dev/{platform}-installer/{schematic}:{version}",
            "installerSecureboot": f"factory.talos.dev/{platform}-installer-secureboot/{schematic}:{version}",
            "iso": f"{image}/{platform}-{arch}.iso",
            "isoSecureboot": f"{image}/{platform}-{arch}-secureboot.iso",
            "diskImage": f"{image}/{platform}-{arch}.{disk_suffix}",
            "diskImageSecureboot": f"{image}/{platform}-{arch}-secureboot.{disk_suffix}",
            "kernel": f"{image}/kernel-{arch}",
            "initramfs": f"{image}/initramfs-{arch}.xz",
            "kernelCommandLine": f"{image}/cmdline-{platform}-{arch}",
            "pxe": f"https://pxe.factory.talos.dev/pxe/{schematic}/{version}/{platform}-{arch}",
            "uki": f"{image}/{platform}-{arch}-uki.efi",
        },
    }


@invoke("talos:machine/getConfiguration:getConfiguration")
def _machine_configuration(args: dict[str, Any]) -> dict[str, Any]:
    secrets = args.get("machineSecrets") or {}
    missing = [k for k in ("certs", "cluster", "secrets", "trustdinfo") if k not in secrets]
    token = (secrets.get("secrets") or {}).get("bootstrapToken")
    if missing or not token:
        # The real provider rejects snake_case nested keys with exactly this complaint.
        raise ValueError("Missing Configuration for Required Attribute machine_secrets.secrets.bootstrap_token")
    patches = [str(p) for p in args.get("configPatches") or []]
    document = {
        "version": "v1alpha1",
        "machine": {"type": args.get("machineType"), "token": secrets["trustdinfo"]["token"]},
        "cluster": {
            "clusterName": args.get("clusterName"),
            "controlPlane": {"endpoint": args.get("clusterEndpoint")},
            "token": token,
        },
        "kubernetesVersion": args.get("kubernetesVersion"),
        "talosVersionContract": args.get("talosVersion"),
        "patches": patches,
    }
    return {
        "id": args.get("clusterName"),
        "clusterName": args.get("clusterName"),
        "clusterEndpoint": args.get("clusterEndpoint"),
        "machineType": args.get("machineType"),
        "machineSecrets": secrets,
        "configPatches": patches,
        "talosVersion": args.get("talosVersion"),
        "kubernetesVersion": args.get("kubernetesVersion"),
        "docs": False,
        "examples": False,
        "machineConfiguration": "# offline rendering of the generated machine configuration\n"
        + json.dumps(document, sort_keys=True, indent=2),
    }


@invoke("talos:client/getConfiguration:getConfiguration")
def _client_configuration(args: dict[str, Any]) -> dict[str, Any]:
    client = args.get("clientConfiguration") or {}
    if "caCertificate" not in client:
        raise ValueError("Missing Configuration for Required Attribute client_configuration.ca_certificate")
    name = str(args.get("clusterName", ""))
    endpoints = [str(e) for e in args.get("endpoints") or []]
    nodes = [str(n) for n in args.get("nodes") or []]
    talosconfig = (
        f"context: {name}\n"
        "contexts:\n"
        f"  {name}:\n"
        f"    endpoints: [{', '.join(endpoints)}]\n"
        f"    nodes: [{', '.join(nodes)}]\n"
        f"    ca: {client['caCertificate']}\n"
        f"    crt: {client.get('clientCertificate', '')}\n"
        f"    key: {client.get('clientKey', '')}\n"
    )
    return {
        "id": name,
        "clusterName": name,
        "clientConfiguration": client,
        "endpoints": endpoints,
        "nodes": nodes,
        "talosConfig": talosconfig,
    }


@invoke("talos:cluster/getHealth:getHealth")
def _health(args: dict[str, Any]) -> dict[str, Any]:
    client = args.get("clientConfiguration") or {}
    if "caCertificate" not in client:
        raise ValueError("Missing Configuration for Required Attribute client_configuration.ca_certificate")
    endpoints = [str(e) for e in args.get("endpoints") or []]
    return {
        "id": "cluster_health",
        "clientConfiguration": client,
        "controlPlaneNodes": args.get("controlPlaneNodes") or [],
        "workerNodes": args.get("workerNodes") or [],
        "endpoints": endpoints,
        "skipKubernetesChecks": bool(args.get("skipKubernetesChecks")),
    }


@resource_id_of("talos:imageFactory/schematic:Schematic")
def _schematic_id(name: str, inputs: dict[str, Any]) -> str:
    # The Image Factory names a schematic by the SHA-256 of its customization document.
    return hashlib.sha256(str(inputs.get("schematic", "")).encode()).hexdigest()
