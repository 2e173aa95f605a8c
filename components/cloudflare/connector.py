"""`CloudflaredConnector`: the tunnel connector as a Kubernetes Deployment (PROD cluster at home).

cloudflared dials out to Cloudflare, so the home router keeps every port closed (NFR-007). The
token reaches the container only through a Secret (`TUNNEL_TOKEN` from `secretKeyRef`), never as a
literal in the pod spec. The namespace enforces the `restricted` Pod Security Standard, and the pod
meets it: non-root, read-only root filesystem, no capabilities, RuntimeDefault seccomp.
"""

from typing import NotRequired, TypedDict

import pulumi
import pulumi_kubernetes.apps.v1 as apps_v1
import pulumi_kubernetes.core.v1 as core_v1

METRICS_PORT = 2000
NONROOT_UID = 65532  # the `nonroot` user of cloudflared's distroless image


class CloudflaredConnectorArgs(TypedDict):
    token: pulumi.Input[str]
    """The tunnel token (secret), e.g. the `tunnel_token_prod` output of the cloud stack."""
    image: str
    """cloudflared image with an exact tag or digest (`cloudflare/cloudflared:2025.8.1`)."""
    namespace: NotRequired[str]
    replicas: NotRequired[int]
    """Connectors of one tunnel share its traffic; two survive a node drain."""


class CloudflaredConnector(pulumi.ComponentResource):
    """Namespace, token Secret and cloudflared Deployment for one remotely managed tunnel."""

    namespace: pulumi.Output[str]
    deployment_name: pulumi.Output[str]

    def __init__(self, name: str, args: CloudflaredConnectorArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("homelab:cloudflare:CloudflaredConnector", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        image = args["image"]
        if image.endswith(":latest") or (":" not in image.rsplit("/", 1)[-1] and "@sha256:" not in image):
            raise ValueError(f"CloudflaredConnector {name!r}: pin the image to an exact tag or digest, got {image!r}")
        namespace_name = args.get("namespace", "cloudflared")
        labels = {"app.kubernetes.io/name": "cloudflared", "app.kubernetes.io/instance": name}
        managed = {"app.kubernetes.io/managed-by": "pulumi"}

        namespace = core_v1.Namespace(
            f"{name}-namespace",
            metadata={
                "name": namespace_name,
                "labels": {
                    **managed,
                    "pod-security.kubernetes.io/enforce": "restricted",
                    "pod-security.kubernetes.io/enforce-version": "latest",
                },
            },
            opts=child,
        )
        secret = core_v1.Secret(
            f"{name}-token",
            metadata={"name": f"{name}-token", "namespace": namespace.metadata.name, "labels": {**labels, **managed}},
            type="Opaque",
            string_data={"token": pulumi.Output.secret(args["token"])},
            opts=child,
        )
        container_security: core_v1.SecurityContextArgsDict = {
            "allow_privilege_escalation": False,
            "read_only_root_filesystem": True,
            "run_as_non_root": True,
            "run_as_user": NONROOT_UID,
            "run_as_group": NONROOT_UID,
            "capabilities": {"drop": ["ALL"]},
            "seccomp_profile": {"type": "RuntimeDefault"},
        }
        deployment = apps_v1.Deployment(
            f"{name}-deployment",
            metadata={"name": name, "namespace": namespace.metadata.name, "labels": {**labels, **managed}},
            spec={
                "replicas": args.get("replicas", 2),
                "selector": {"match_labels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "automount_service_account_token": False,
                        "security_context": {
                            "run_as_non_root": True,
                            "run_as_user": NONROOT_UID,
                            "seccomp_profile": {"type": "RuntimeDefault"},
                        },
                        "containers": [
                            {
                                "name": "cloudflared",
                                "image": image,
                                "args": [
                                    "tunnel",
                                    "--no-autoupdate",
                                    "--metrics",
                                    f"0.0.0.0:{METRICS_PORT}",
                                    "run",
                                ],
                                "env": [
                                    {
                                        "name": "TUNNEL_TOKEN",
                                        "value_from": {
                                            "secret_key_ref": {"name": secret.metadata.name, "key": "token"}
                                        },
                                    }
                                ],
                                "ports": [{"name": "metrics", "container_port": METRICS_PORT}],
                                "liveness_probe": {
                                    "http_get": {"path": "/ready", "port": METRICS_PORT},
                                    "initial_delay_seconds": 10,
                                    "period_seconds": 10,
                                    "failure_threshold": 3,
                                },
                                "resources": {
                                    "requests": {"cpu": "10m", "memory": "64Mi"},
                                    "limits": {"memory": "256Mi"},
                                },
                                "security_context": container_security,
                            }
                        ],
                    },
                },
            },
            opts=child,
        )
        self.namespace = namespace.metadata.name
        self.deployment_name = deployment.metadata.name
        self.register_outputs({"namespace": self.namespace, "deployment_name": self.deployment_name})
