"""What the Authentik provider (pulumi_authentik 2025.8.1, TF provider v2025.8.1) would answer.

Ids follow the API's primary keys: providers, users, property-less integer models get a numeric id
(the program converts them with `float()` where the SDK wants a number, as in `protocol_provider`
and `Token.user`); flows, stages, groups, applications, bindings, policies and key pairs get UUIDs.
Invokes answer as a server that has just bootstrapped: the self-signed key pair and the managed
OAuth2 scope mappings exist.
"""

import uuid
from typing import Any

from homelab.simulate import fake_hex, invoke, resource_id_of, resource_output

_NUMERIC = (
    "authentik:index/providerOauth2:ProviderOauth2",
    "authentik:index/providerProxy:ProviderProxy",
    "authentik:index/providerSaml:ProviderSaml",
    "authentik:index/user:User",
    "authentik:index/token:Token",
)
_UUID_TYPES = (
    "authentik:index/application:Application",
    "authentik:index/flow:Flow",
    "authentik:index/group:Group",
)


def fake_uuid(seed: str) -> str:
    return str(uuid.UUID(fake_hex(f"authentik:{seed}", 32)))


def _numeric_id(name: str, inputs: dict[str, Any]) -> str:
    # A stable primary key in a realistic range (the API's integer pks start at 1).
    return str(int(fake_hex(name, 6), 16) % 9000 + 1)


def _uuid_id(name: str, inputs: dict[str, Any]) -> str:
    return fake_uuid(name)


for _type in _NUMERIC:
    resource_id_of(_type)(_numeric_id)
for _type in _UUID_TYPES:
    resource_id_of(_type)(_uuid_id)


@resource_output("authentik:index/flow:Flow")
def _flow(name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    return {"uuid": fake_uuid(name)}


@resource_output("authentik:index/application:Application")
def _application(name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    return {"uuid": fake_uuid(f"app:{name}")}


@resource_output("authentik:index/token:Token")
def _token(name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    return {"key": fake_hex(f"token:{name}", 60) if inputs.get("retrieveKey") else ""}


@resource_output("authentik:index/providerSaml:ProviderSaml")
def _saml(name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    return {"urlSsoPost": "https://authentik/application/saml/sso/binding/post/"}


@invoke("authentik:index/getCertificateKeyPair:getCertificateKeyPair")
def _key_pair(args: dict[str, Any]) -> dict[str, Any]:
    name = str(args.get("name", ""))
    return {
        "id": fake_uuid(f"kp:{name}"),
        "name": name,
        "fingerprint256": ":".join(fake_hex(f"fp:{name}", 64)[i : i + 2] for i in range(0, 64, 2)),
        "fingerprint1": ":".join(fake_hex(f"fp1:{name}", 40)[i : i + 2] for i in range(0, 40, 2)),
        "subject": "OU=Self-signed,O=authentik,CN=authentik Self-signed Certificate",
        "expiry": "2027-12-01T00:00:00Z",
        # Asked for neither: a real provider leaves them empty when fetch_* is false.
        "certificateData": "",
        "keyData": "",
        "fetchCertificate": bool(args.get("fetchCertificate", True)),
        "fetchKey": bool(args.get("fetchKey", True)),
    }


@invoke("authentik:index/getPropertyMappingProviderScope:getPropertyMappingProviderScope")
def _scopes(args: dict[str, Any]) -> dict[str, Any]:
    managed = [str(m) for m in args.get("managedLists") or []]
    ids = [fake_uuid(f"scope:{m}") for m in managed]
    return {"id": ",".join(ids), "ids": ids, "managedLists": managed}
