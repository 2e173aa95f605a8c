"""Signatures of the Pulumi RPC property format (sdk/go/common/resource/sig), shared by the engine's modules."""

SIG_KEY = "4dabf18193072939515e22adb298388d"
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
ASSET_SIG = "c44067f5952c0a294b673a41bacd8c17"
ARCHIVE_SIG = "0def7320c3a5731c473e5ecbe6d01bc7"
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
"""The value a property has on the wire while it is unknown (a preview's computed outputs)."""
