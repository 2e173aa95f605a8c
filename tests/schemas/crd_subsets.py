"""Subset schemas of the CRD-backed objects the stacks create, written by hand from the upstream API
types (cert-manager v1, External Secrets v1, Argo CD v1alpha1, Cilium v2, Gateway API v1/v1beta1,
prometheus-operator v1/v1alpha1, Velero v1, Talos' talos.dev/v1alpha1 ServiceAccount).

They are the closed-world layer: each schema closes the objects' top level and the `spec` fields
this project sets, so an unknown or misspelt key fails. The upstream rules (types, enums, patterns,
required fields) are checked by the validators generated from the upstream API types
(tests/crd-schemas, `test_crd_backed_objects_validate_against_the_upstream_api_types`), which accept
unknown keys. See docs/decisions/platform-ownership.md, "What the tests validate".
"""

from typing import Any

STR = {"type": "string"}
STRS = {"type": "array", "items": STR}
BOOL = {"type": "boolean"}
INT = {"type": "integer"}
OBJ = {"type": "object"}
META = {
    "type": "object",
    "required": ["name"],
    "properties": {"name": STR, "namespace": STR, "labels": OBJ, "annotations": OBJ},
    "additionalProperties": False,
}


def _object(api_version: str, kind: str, spec: dict[str, Any], namespaced: bool = True) -> dict[str, Any]:
    meta = (
        META
        if namespaced
        else {**META, "properties": {k: v for k, v in META["properties"].items() if k != "namespace"}}
    )
    return {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {"apiVersion": {"const": api_version}, "kind": {"const": kind}, "metadata": meta, "spec": spec},
        "additionalProperties": False,
    }


def _closed(required: list[str], properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": properties, "additionalProperties": False}


ISSUER_REF = _closed(["name"], {"name": STR, "kind": {"enum": ["Issuer", "ClusterIssuer"]}, "group": STR})
PRIVATE_KEY = _closed(
    [],
    {"algorithm": {"enum": ["RSA", "ECDSA", "Ed25519"]}, "size": INT, "rotationPolicy": {"enum": ["Never", "Always"]}},
)
ISSUER_SPEC = {
    "type": "object",
    "properties": {"selfSigned": OBJ, "ca": _closed(["secretName"], {"secretName": STR})},
    "additionalProperties": False,
    "minProperties": 1,
    "maxProperties": 1,
}
SECRET_KEY_REF = _closed(["name", "key"], {"name": STR, "key": STR, "namespace": STR})

SCHEMAS: dict[str, dict[str, Any]] = {
    "cert-manager.io/v1:Certificate": _object(
        "cert-manager.io/v1",
        "Certificate",
        _closed(
            ["secretName", "issuerRef"],
            {
                "secretName": STR,
                "issuerRef": ISSUER_REF,
                "isCA": BOOL,
                "commonName": STR,
                "dnsNames": STRS,
                "duration": STR,
                "renewBefore": STR,
                "usages": {"type": "array", "items": {"enum": ["server auth", "client auth", "digital signature"]}},
                "privateKey": PRIVATE_KEY,
            },
        ),
    ),
    "cert-manager.io/v1:Issuer": _object("cert-manager.io/v1", "Issuer", ISSUER_SPEC),
    "cert-manager.io/v1:ClusterIssuer": _object("cert-manager.io/v1", "ClusterIssuer", ISSUER_SPEC, namespaced=False),
    "external-secrets.io/v1:ClusterSecretStore": _object(
        "external-secrets.io/v1",
        "ClusterSecretStore",
        _closed(
            ["provider"],
            {
                "conditions": {"type": "array", "items": _closed([], {"namespaces": STRS, "namespaceRegexes": STRS})},
                "provider": _closed(
                    ["bitwardensecretsmanager"],
                    {
                        "bitwardensecretsmanager": _closed(
                            ["auth", "bitwardenServerSDKURL", "organizationID", "projectID"],
                            {
                                "apiURL": STR,
                                "identityURL": STR,
                                "bitwardenServerSDKURL": STR,
                                "caBundle": STR,
                                "caProvider": _closed(
                                    ["type", "name"],
                                    {
                                        "type": {"enum": ["Secret", "ConfigMap"]},
                                        "name": STR,
                                        "key": STR,
                                        "namespace": STR,
                                    },
                                ),
                                "organizationID": STR,
                                "projectID": STR,
                                "auth": _closed(
                                    ["secretRef"],
                                    {"secretRef": _closed(["credentials"], {"credentials": SECRET_KEY_REF})},
                                ),
                            },
                        )
                    },
                ),
            },
        ),
        namespaced=False,
    ),
    "external-secrets.io/v1:ExternalSecret": _object(
        "external-secrets.io/v1",
        "ExternalSecret",
        _closed(
            ["secretStoreRef", "data"],
            {
                "refreshInterval": {"type": "string", "pattern": r"^(\d+h)?(\d+m)?(\d+s)?$"},
                "secretStoreRef": _closed(
                    ["name"], {"name": STR, "kind": {"enum": ["SecretStore", "ClusterSecretStore"]}}
                ),
                "target": _closed(
                    [],
                    {
                        "name": STR,
                        "creationPolicy": {"enum": ["Owner", "Orphan", "Merge", "None"]},
                        "deletionPolicy": {"enum": ["Delete", "Merge", "Retain"]},
                    },
                ),
                "data": {
                    "type": "array",
                    "minItems": 1,
                    "items": _closed(
                        ["secretKey", "remoteRef"], {"secretKey": STR, "remoteRef": _closed(["key"], {"key": STR})}
                    ),
                },
            },
        ),
    ),
    "argoproj.io/v1alpha1:ApplicationSet": _object(
        "argoproj.io/v1alpha1",
        "ApplicationSet",
        _closed(
            ["generators", "template"],
            {
                "goTemplate": BOOL,
                "goTemplateOptions": STRS,
                "generators": {"type": "array", "items": _closed([], {"clusters": _closed([], {"selector": OBJ})})},
                "template": _closed(
                    ["metadata", "spec"],
                    {
                        "metadata": _closed([], {"name": STR, "labels": OBJ}),
                        "spec": _closed(
                            ["project", "source", "destination"],
                            {
                                "project": STR,
                                "source": _closed(
                                    ["repoURL", "path"], {"repoURL": STR, "targetRevision": STR, "path": STR}
                                ),
                                "destination": _closed([], {"server": STR, "name": STR, "namespace": STR}),
                                "syncPolicy": _closed(
                                    [],
                                    {
                                        "automated": _closed([], {"prune": BOOL, "selfHeal": BOOL}),
                                        "syncOptions": STRS,
                                        "retry": _closed(
                                            [],
                                            {
                                                "limit": INT,
                                                "backoff": _closed(
                                                    [], {"duration": STR, "factor": INT, "maxDuration": STR}
                                                ),
                                            },
                                        ),
                                    },
                                ),
                            },
                        ),
                    },
                ),
            },
        ),
    ),
    "cilium.io/v2:CiliumNetworkPolicy": _object(
        "cilium.io/v2",
        "CiliumNetworkPolicy",
        _closed(
            ["endpointSelector"],
            {
                "endpointSelector": OBJ,
                "ingress": {
                    "type": "array",
                    "items": _closed(
                        [],
                        {
                            "fromEntities": {
                                "type": "array",
                                "items": {
                                    "enum": [
                                        "host",
                                        "remote-node",
                                        "kube-apiserver",
                                        "ingress",
                                        "health",
                                        "cluster",
                                        "world",
                                    ]
                                },
                            }
                        },
                    ),
                },
            },
        ),
    ),
    "gateway.networking.k8s.io/v1:Gateway": _object(
        "gateway.networking.k8s.io/v1",
        "Gateway",
        _closed(
            ["gatewayClassName", "listeners"], {"gatewayClassName": STR, "listeners": {"type": "array", "minItems": 1}}
        ),
    ),
    "gateway.networking.k8s.io/v1:HTTPRoute": _object(
        "gateway.networking.k8s.io/v1",
        "HTTPRoute",
        _closed([], {"parentRefs": {"type": "array"}, "hostnames": STRS, "rules": {"type": "array"}}),
    ),
    "gateway.networking.k8s.io/v1beta1:ReferenceGrant": _object(
        "gateway.networking.k8s.io/v1beta1",
        "ReferenceGrant",
        _closed(["from", "to"], {"from": {"type": "array"}, "to": {"type": "array"}}),
    ),
    # prometheus-operator v0.93 (the kube-prometheus-stack objects generated from the catalog and
    # the threshold table): the fields this project sets, with the CRDs' required keys.
    "monitoring.coreos.com/v1:PrometheusRule": _object(
        "monitoring.coreos.com/v1",
        "PrometheusRule",
        _closed(
            ["groups"],
            {
                "groups": {
                    "type": "array",
                    "items": _closed(
                        ["name"],
                        {
                            "name": STR,
                            "interval": STR,
                            "rules": {
                                "type": "array",
                                "items": _closed(
                                    ["expr"],
                                    {
                                        "alert": STR,
                                        "record": STR,
                                        "expr": {"type": ["string", "integer"]},
                                        "for": STR,
                                        "keep_firing_for": STR,
                                        "labels": OBJ,
                                        "annotations": OBJ,
                                    },
                                ),
                            },
                        },
                    ),
                }
            },
        ),
    ),
    "monitoring.coreos.com/v1:Probe": _object(
        "monitoring.coreos.com/v1",
        "Probe",
        _closed(
            [],
            {
                "jobName": STR,
                "interval": STR,
                "scrapeTimeout": STR,
                "module": STR,
                "prober": _closed(["url"], {"url": STR, "scheme": {"enum": ["http", "https"]}, "path": STR}),
                "targets": _closed(
                    [], {"staticConfig": _closed([], {"static": STRS, "labels": OBJ, "relabelingConfigs": OBJ})}
                ),
            },
        ),
    ),
    "monitoring.coreos.com/v1:PodMonitor": _object(
        "monitoring.coreos.com/v1",
        "PodMonitor",
        _closed(
            ["selector"],
            {
                "selector": _closed([], {"matchLabels": OBJ, "matchExpressions": {"type": "array"}}),
                "namespaceSelector": _closed([], {"any": BOOL, "matchNames": STRS}),
                "jobLabel": STR,
                "podMetricsEndpoints": {
                    "type": "array",
                    "items": _closed(
                        [],
                        {
                            "port": STR,
                            "path": STR,
                            "interval": STR,
                            "relabelings": {
                                "type": "array",
                                "items": _closed(
                                    [],
                                    {
                                        "action": STR,
                                        "sourceLabels": STRS,
                                        "separator": STR,
                                        "regex": STR,
                                        "targetLabel": STR,
                                        "replacement": STR,
                                    },
                                ),
                            },
                        },
                    ),
                },
            },
        ),
    ),
    "monitoring.coreos.com/v1alpha1:ScrapeConfig": _object(
        "monitoring.coreos.com/v1alpha1",
        "ScrapeConfig",
        _closed(
            [],
            {
                "jobName": STR,
                "scrapeInterval": STR,
                "scrapeTimeout": STR,
                "metricsPath": STR,
                "staticConfigs": {"type": "array", "items": _closed([], {"targets": STRS, "labels": OBJ})},
            },
        ),
    ),
}

# Velero v1.18.1 (velero.io/v1, pkg/apis/velero/v1 and config/crd/v1/bases at the tag).
_STRING_MAP = {"type": "object", "additionalProperties": STR}
_VELERO_BACKUP_TEMPLATE = _closed(
    [],
    {
        "includedNamespaces": STRS,
        "excludedNamespaces": STRS,
        "storageLocation": STR,
        "ttl": {"type": "string", "pattern": r"^([0-9]+h)?([0-9]+m)?([0-9]+s)?$", "minLength": 2},
        "snapshotVolumes": BOOL,
        "defaultVolumesToFsBackup": BOOL,
        "includeClusterResources": BOOL,
        "metadata": _closed([], {"labels": _STRING_MAP}),
    },
)
SCHEMAS.update(
    {
        "velero.io/v1:BackupStorageLocation": _object(
            "velero.io/v1",
            "BackupStorageLocation",
            _closed(
                ["provider", "objectStorage"],
                {
                    "provider": STR,
                    "default": BOOL,
                    "objectStorage": _closed(["bucket"], {"bucket": STR, "prefix": STR}),
                    "config": _STRING_MAP,
                    "credential": _closed(["key"], {"name": STR, "key": STR, "optional": BOOL}),
                    "accessMode": {"enum": ["ReadOnly", "ReadWrite"]},
                },
            ),
        ),
        "velero.io/v1:Schedule": _object(
            "velero.io/v1",
            "Schedule",
            _closed(
                ["schedule", "template"],
                {
                    "schedule": STR,
                    "template": _VELERO_BACKUP_TEMPLATE,
                    "useOwnerReferencesInBackup": BOOL,
                    "paused": BOOL,
                    "skipImmediately": BOOL,
                },
            ),
        ),
        # Talos' API credential for pods (its `ServiceAccountSpec`: the roles only). Talos serves
        # the CRD itself when `kubernetesTalosAPIAccess` is enabled; the role must be one the
        # machine config allows, which the stack test checks.
        "talos.dev/v1alpha1:ServiceAccount": _object(
            "talos.dev/v1alpha1",
            "ServiceAccount",
            _closed(["roles"], {"roles": {"type": "array", "minItems": 1, "items": {"pattern": "^os:[a-z:]+$"}}}),
        ),
    }
)
