"""Upstream CRDs of the platform charts, applied before the charts (one call per chart).

External Secrets and Argo CD can template their own CRDs; we turn that off and apply the CRDs
first, from the project's vendored-manifest lock (`vendor/manifests.lock.yaml`: URL, SHA-256, object
index; `make vendor` fetches and verifies the files), because:

- the objects Pulumi creates from those CRDs (the ClusterSecretStore, ExternalSecrets, Argo CD's
  root ApplicationSet) must not race the chart that happens to install their definition;
- a chart uninstall or a failed upgrade then never deletes a CRD, and with it every object of it.

cert-manager is the exception: its installable CRD file (`cert-manager.crds.yaml`) is a release
asset whose checksum could not be recorded here, and the repository's `deploy/crds/` files are not
meant for provisioning (upstream says so), so it is not pinned; the chart installs its CRDs
(`crds.enabled`) and keeps them on uninstall (`crds.keep`). See docs/decisions/platform-ownership.md.
"""

from collections.abc import Sequence

import pulumi
import pulumi_kubernetes as k8s

from components.manifests import manifest_files

EXTERNAL_SECRETS = "external-secrets"
ARGO_CD = "argo-cd"


def _v(version: str) -> str:
    return version if version.startswith("v") else f"v{version}"


def crd_step(name: str, source: str, version: str, opts: pulumi.ResourceOptions) -> Sequence[pulumi.Resource]:
    """Apply the pinned CRD files of `source` at `version`; what the chart and its objects `depends_on`.

    Raises (before anything is registered) if that version is not pinned in the lock.
    """
    files = manifest_files(source, _v(version))
    return [k8s.yaml.v2.ConfigGroup(f"{name}-crds", files=files, opts=opts)]
