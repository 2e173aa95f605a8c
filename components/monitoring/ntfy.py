"""`Ntfy`: the self-hosted push server on PROD that Alertmanager publishes to and the phone subscribes to.

Threat model: ntfy is the one monitoring service the phone reaches from the Internet, and the ntfy
app can pass neither Cloudflare Access nor an SSO proxy. So ntfy itself is the gate:
`auth-default-access: deny-all` (an anonymous visitor can neither read nor write any topic), sign-up
and reservations off, and token-only users with least privilege per topic: `alertmanager` may
only *write* the alert topics, `phone` may only *read* them, and (when the identity layer pushes
sign-up notifications) `authentik` may only *write* its one topic, which `phone` may read. Their
tokens are stack secrets (Authentik's comes from the `cloud` stack's secret output); the users'
password hashes are random bcrypt strings no password matches, so a token is the only way in.
The config holds the tokens, so it is a Secret, not a ConfigMap. How the API path is published
(a separate hostname without Access, the web UI kept behind Access) is in
docs/runbooks/alerts.md#phone-notifications.
"""

import hashlib
from dataclasses import dataclass
from typing import NotRequired, TypedDict

import pulumi
import pulumi_kubernetes as k8s
import yaml

PORT = 8080
"""ntfy listens unprivileged; the Service maps port 80 to it."""
UID = 1000
_BCRYPT_ALPHABET = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def unusable_bcrypt(user: str) -> str:
    """A well-formed bcrypt hash (`$2a$10$` + 53 characters) that no known password produces.

    ntfy's declarative `auth-users` needs a hash per user; these users log in with tokens only.
    """
    digest = hashlib.sha512(f"homelab/ntfy/{user}/no-password".encode()).digest()
    body = "".join(_BCRYPT_ALPHABET[b % 64] for b in digest)[:53]
    return f"$2a$10${body}"


@dataclass(frozen=True)
class ExtraPublisher:
    """One more token-only user that may write one topic (the phone may read it)."""

    user: str
    topic: str
    token: str


def server_config(
    base_url: str,
    topics: tuple[str, ...],
    publisher_token: str,
    phone_token: str,
    extra: ExtraPublisher | None = None,
) -> str:
    """ntfy's server.yml (tokens included: store it only in a Secret)."""
    access = [f"alertmanager:{topic}:wo" for topic in topics] + [f"phone:{topic}:ro" for topic in topics]
    users = ["alertmanager", "phone"]
    tokens = [f"alertmanager:{publisher_token}:alertmanager", f"phone:{phone_token}:phone"]
    if extra is not None:
        if extra.topic in topics or extra.user in users:
            raise ValueError(
                f"ntfy: an extra publisher needs a user and a topic of its own, got {extra.user!r} on {extra.topic!r}"
            )
        users.append(extra.user)
        access += [f"{extra.user}:{extra.topic}:wo", f"phone:{extra.topic}:ro"]
        tokens.append(f"{extra.user}:{extra.token}:{extra.user}")
    config = {
        "base-url": base_url,
        "listen-http": f":{PORT}",
        "behind-proxy": True,
        "cache-file": "/var/lib/ntfy/cache.db",
        "cache-duration": "24h",
        "auth-file": "/var/lib/ntfy/user.db",
        "auth-default-access": "deny-all",
        "auth-users": [f"{user}:{unusable_bcrypt(user)}:user" for user in users],
        "auth-access": access,
        "auth-tokens": tokens,
        "enable-signup": False,
        "enable-login": True,
        "enable-reservations": False,
        # iPhones only get timely pushes through ntfy.sh's APNs relay (it sees a poll request, not the message).
        "upstream-base-url": "https://ntfy.sh",
        "visitor-request-limit-burst": 60,
        "visitor-request-limit-replenish": "5s",
        "log-format": "json",
    }
    return yaml.safe_dump(config, sort_keys=False)


class NtfyArgs(TypedDict):
    image: str
    base_url: str
    """Public URL the phone uses (`https://push.<domain>`)."""
    topics: tuple[str, ...]
    publisher_token: pulumi.Input[str]
    """Alertmanager's token (`tk_` + 29 characters)."""
    phone_token: pulumi.Input[str]
    storage_gb: int
    """Size limit of the message cache (an emptyDir)."""
    namespace: NotRequired[str]
    extra_publisher: NotRequired[pulumi.Input[ExtraPublisher | None]]
    """Authentik's sign-up push (from the `cloud` stack's `ntfy_identity_publisher`), if any."""


class Ntfy(pulumi.ComponentResource):
    """ntfy (Deployment, volume, Service) in its own namespace under Pod Security `restricted`."""

    service_url: pulumi.Output[str]

    def __init__(self, name: str, args: NtfyArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("homelab:monitoring:Ntfy", name, None, opts)
        ns = args.get("namespace", "ntfy")
        labels = {"app.kubernetes.io/name": "ntfy", "app.kubernetes.io/managed-by": "pulumi"}
        child = pulumi.ResourceOptions(parent=self)
        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=ns, labels={**labels, "pod-security.kubernetes.io/enforce": "restricted"}
            ),
            opts=child,
        )
        in_ns = pulumi.ResourceOptions(parent=self, depends_on=[namespace])
        topics = args["topics"]
        config = k8s.core.v1.Secret(
            f"{name}-config",
            metadata=k8s.meta.v1.ObjectMetaArgs(name="ntfy-server", namespace=ns, labels=labels),
            type="Opaque",
            string_data={
                "server.yml": pulumi.Output.secret(
                    pulumi.Output.all(args["publisher_token"], args["phone_token"], args.get("extra_publisher")).apply(
                        lambda values: server_config(args["base_url"], topics, *values)
                    )
                )
            },
            opts=in_ns,
        )
        k8s.apps.v1.Deployment(
            f"{name}-deployment",
            metadata=k8s.meta.v1.ObjectMetaArgs(name="ntfy", namespace=ns, labels=labels),
            spec=k8s.apps.v1.DeploymentSpecArgs(
                replicas=1,
                strategy=k8s.apps.v1.DeploymentStrategyArgs(type="Recreate"),  # one writer of the SQLite files
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels={"app.kubernetes.io/name": "ntfy"}),
                template=k8s.core.v1.PodTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(
                        labels=labels,
                        # A changed server.yml (new token) rolls the pod.
                        annotations={"homelab/config-version": config.metadata.resource_version},
                    ),
                    spec=k8s.core.v1.PodSpecArgs(
                        security_context=k8s.core.v1.PodSecurityContextArgs(
                            run_as_non_root=True,
                            run_as_user=UID,
                            run_as_group=UID,
                            fs_group=UID,
                            seccomp_profile=k8s.core.v1.SeccompProfileArgs(type="RuntimeDefault"),
                        ),
                        containers=[
                            k8s.core.v1.ContainerArgs(
                                name="ntfy",
                                image=args["image"],
                                args=["serve", "--config", "/etc/ntfy/server.yml"],
                                ports=[k8s.core.v1.ContainerPortArgs(name="http", container_port=PORT)],
                                readiness_probe=k8s.core.v1.ProbeArgs(
                                    http_get=k8s.core.v1.HTTPGetActionArgs(path="/v1/health", port="http")
                                ),
                                security_context=k8s.core.v1.SecurityContextArgs(
                                    allow_privilege_escalation=False,
                                    read_only_root_filesystem=True,
                                    capabilities=k8s.core.v1.CapabilitiesArgs(drop=["ALL"]),
                                ),
                                resources=k8s.core.v1.ResourceRequirementsArgs(
                                    requests={"cpu": "10m", "memory": "32Mi"}, limits={"memory": "128Mi"}
                                ),
                                volume_mounts=[
                                    k8s.core.v1.VolumeMountArgs(name="config", mount_path="/etc/ntfy", read_only=True),
                                    k8s.core.v1.VolumeMountArgs(name="data", mount_path="/var/lib/ntfy"),
                                ],
                            )
                        ],
                        volumes=[
                            k8s.core.v1.VolumeArgs(
                                name="config",
                                secret=k8s.core.v1.SecretVolumeSourceArgs(secret_name=config.metadata.name),
                            ),
                            # Nothing here needs to survive the pod: users, grants and tokens are
                            # declared in server.yml, and an alert missed while ntfy restarts is
                            # sent again by Alertmanager's repeat. No volume, no data to back up.
                            k8s.core.v1.VolumeArgs(
                                name="data",
                                empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(size_limit=f"{args['storage_gb']}Gi"),
                            ),
                        ],
                    ),
                ),
            ),
            opts=in_ns,
        )
        service = k8s.core.v1.Service(
            f"{name}-service",
            metadata=k8s.meta.v1.ObjectMetaArgs(name="ntfy", namespace=ns, labels=labels),
            spec=k8s.core.v1.ServiceSpecArgs(
                type="ClusterIP",
                selector={"app.kubernetes.io/name": "ntfy"},
                ports=[k8s.core.v1.ServicePortArgs(name="http", port=80, target_port="http")],
            ),
            opts=in_ns,
        )
        self.service_url = service.metadata.apply(lambda m: f"http://{m.name}.{m.namespace}.svc.cluster.local:80")
        self.register_outputs({"service_url": self.service_url})
