"""Twingate: ids and the generated tokens the program reads (marked stand-ins)."""

from typing import Any

from homelab.simulate import fake_hex, resource_id_of, resource_output


def _twingate_id(kind: str) -> Any:
    def make(name: str, inputs: dict[str, Any]) -> str:
        return f"{kind}:offline-{fake_hex(name, 16)}"

    return make


for _token, _kind in (
    ("twingate:index/twingateRemoteNetwork:TwingateRemoteNetwork", "RemoteNetwork"),
    ("twingate:index/twingateConnector:TwingateConnector", "Connector"),
    ("twingate:index/twingateResource:TwingateResource", "Resource"),
    ("twingate:index/twingateServiceAccount:TwingateServiceAccount", "ServiceAccount"),
    ("twingate:index/twingateServiceAccountKey:TwingateServiceAccountKey", "ServiceAccountKey"),
):
    resource_id_of(_token)(_twingate_id(_kind))


@resource_output("twingate:index/twingateConnectorTokens:TwingateConnectorTokens")
def _tokens(name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    return {
        "accessToken": f"offline-placeholder-access-{fake_hex(name, 24)}",
        "refreshToken": f"offline-placeholder-refresh-{fake_hex(name, 24)}",
    }


@resource_output("twingate:index/twingateServiceAccountKey:TwingateServiceAccountKey")
def _key(name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    return {"token": f"offline-placeholder-service-key-{fake_hex(name, 24)}"}
