"""What Argo CD owns: the objects declared under `gitops/` (read from the kustomize tree, not rendered).

Each app folder `gitops/apps/<app>/kustomization.yaml` sets its `namespace:` and lists its resource
files; every document of those files is one object Argo CD manages. The keys (`Kind/namespace/name`)
feed OPS-06 through the generated policy config, so a preview fails when Pulumi would manage the
same object. Overlays only patch what the apps declare, so they add no object of their own.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

GITOPS_DIR = "gitops"


@dataclass(frozen=True)
class GitopsObject:
    source: Path
    document: dict[str, Any]

    @property
    def key(self) -> str:
        meta = self.document.get("metadata") or {}
        return f"{self.document.get('kind')}/{meta.get('namespace', '')}/{meta.get('name')}"


def gitops_objects(root: Path) -> Iterator[GitopsObject]:
    """Every object under `gitops/apps`, with the app's kustomize namespace applied."""
    for kustomization in sorted((root / GITOPS_DIR / "apps").glob("*/kustomization.yaml")):
        spec = yaml.safe_load(kustomization.read_text(encoding="utf-8")) or {}
        namespace = spec.get("namespace")
        for resource in spec.get("resources") or []:
            path = kustomization.parent / str(resource)
            for loaded in yaml.safe_load_all(path.read_text(encoding="utf-8")):
                if not isinstance(loaded, dict):
                    continue
                document = dict(loaded)
                meta = dict(document.get("metadata") or {})
                if namespace and document.get("kind") != "Namespace":
                    meta["namespace"] = namespace
                document["metadata"] = meta
                yield GitopsObject(path, document)


def argocd_object_keys(root: Path) -> list[str]:
    return sorted({obj.key for obj in gitops_objects(root)})
