"""The Kubernetes provider of a Talos cluster, built from the cluster's kubeconfig output."""

import pulumi
import pulumi_kubernetes as k8s


def kubernetes_provider(
    name: str,
    kubeconfig: pulumi.Input[str],
    cluster_identifier: str,
    opts: pulumi.ResourceOptions | None = None,
    *,
    may_be_powered_off: bool = False,
) -> k8s.Provider:
    """A provider whose identity is the cluster, not its credentials.

    `talos.cluster.Kubeconfig` renews the client certificate, which changes the kubeconfig; with a
    stable `cluster_identifier` that is an update of the provider, not a replacement of it and of
    every Kubernetes object it manages.

    `may_be_powered_off` is for a cluster that is off in the host's normal mode (DEV): its objects
    are left as they are while the cluster is unreachable instead of failing every preview. Never
    set it for an always-on cluster, where unreachable means broken.
    """
    return k8s.Provider(
        name,
        kubeconfig=pulumi.Output.secret(kubeconfig),
        cluster_identifier=cluster_identifier,
        enable_server_side_apply=True,
        skip_update_unreachable=may_be_powered_off or None,
        opts=opts,
    )
