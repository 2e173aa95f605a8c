"""Offline stand-ins for the secrets a stack reads: the offline engine's, never a stack's.

A real `pulumi preview` decrypts the stack's secrets; the offline engine has no key, so it feeds each
secret config key a well-formed stand-in instead (a PEM where the program parses a PEM, a base64
seed where it decodes one). Keeping them here, not beside the stacks' `SecretSpec`s, means no stack
module holds a value that exists only for the offline run. Every stand-in is recognisable
(`offline`/`placeholder` in it, or all zeros) and is listed in the preview's `placeholders`.
"""

from collections.abc import Mapping
from typing import Final

PLACEHOLDER_MARK: Final = "offline-placeholder"

STAND_INS: Final[Mapping[str, str]] = {
    "ociPrivateKey": (
        "-----BEGIN PRIVATE KEY-----\n"
        "T0ZGTElORS1QTEFDRUhPTERFUi1OT1QtQS1SRUFMLUtFWS0wMDAwMDAwMDAwMDAwMDAw\n"
        "MDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAw\n"
        "-----END PRIVATE KEY-----\n"
    ),
    "cloudflareApiToken": "offlineplaceholdercloudflaretoken00000000",
    "secretSeed": "b2ZmbGluZS1wbGFjZWhvbGRlci1zZWVkLW5vdC1yYW5kb20tMDAwMDAwMDAwMDAwMDAw",
    "managementSshPrivateKey": (
        "-----BEGIN OPENSSH PRIVATE KEY-----\n"
        "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
        "QyNTUxOQAAACBvZmZsaW5lLXBsYWNlaG9sZGVyLW5vdC1hLXJlYWwta2V5AAAAAAAAAAAA\n"
        "-----END OPENSSH PRIVATE KEY-----\n"
    ),
    "ovhS3AccessKey": "offlineplaceholderovhaccesskey0",
    "ovhS3SecretKey": "offlineplaceholderovhsecretkey00000000000",
    "omniEtcdPrivateKey": (
        "-----BEGIN PGP PRIVATE KEY BLOCK-----\n"
        "\n"
        "lFgEZm9mZmxpbmUtcGxhY2Vob2xkZXItbm90LWEtcmVhbC1ncGcta2V5LTAwMDAw\n"
        "=OFFL\n"
        "-----END PGP PRIVATE KEY BLOCK-----\n"
    ),
    # Base64 of 32 bytes, as the SSE-C key must be.
    "etcdSnapshotKey": "b2ZmbGluZS1wbGFjZWhvbGRlci1ldGNkLWtleS0wMDA=",
    "ntfyPublisherToken": "tk_offlineplaceholderpublisher00",
    "ntfyPhoneToken": "tk_offlineplaceholderphone000000",
    "telegramBotToken": "000000000:offline-placeholder-telegram-bot-token",
    "telegramChatId": "-1000000000000",
    "bitwardenAccessToken": "0.offline-placeholder-bitwarden-machine-account.token:AAAAAAAAAAAAAAAAAAAAAA==",
    "twingateApiToken": "offline-placeholder-twingate-api-token",
    "proxmoxApiToken": "terraform@pve!iac=00000000-0000-0000-0000-000000000000",
    "proxmoxSshPrivateKey": (
        "-----BEGIN OPENSSH PRIVATE KEY-----\n"
        "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
        "QyNTUxOQAAACBvZmZsaW5lLXBsYWNlaG9sZGVyLW5vdC1hLXJlYWwta2V5AAAAAAAAAAAA\n"
        "-----END OPENSSH PRIVATE KEY-----\n"
    ),
}


def stand_in(key: str) -> str:
    """The offline value of secret config key `key` (short form, without `homelab:`)."""
    return STAND_INS.get(key, f"{PLACEHOLDER_MARK}-{key}")
