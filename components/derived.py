"""Secrets derived from one random seed, so a fresh estate needs a single secret from its operator.

Threat model: the seed is a Pulumi secret (encrypted in the stack file, `require_secret`); every
value derived from it is wrapped in `Output.secret` before anything else sees it, so neither the
seed nor a derived value reaches a log, a plain-text output or the state unencrypted. Derivation is
HKDF-expand style (HMAC-SHA256 over a purpose label and a counter): values of different purposes are
independent, and knowing one reveals neither the seed nor another. Bumping a purpose's generation
(`homelab:rotation`) rotates that value alone (docs/decisions/derived-secrets.md).

The label format is part of the estate's state: changing it rotates every derived secret at once,
so `tests/components/test_derived.py` pins known answers.
"""

import base64
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi

__all__ = ["SecretDeriver", "derive_secret"]


def derive_secret(seed: str, label: str, length: int) -> bytes:
    """`length` bytes for `label` (e.g. `homelab/cloud/postgres_password/v1`) from `seed`."""
    if length <= 0:
        raise ValueError(f"length must be positive, got {length}")
    blocks = b""
    counter = 1
    while len(blocks) < length:
        blocks += hmac.new(seed.encode(), label.encode() + bytes([counter]), hashlib.sha256).digest()
        counter += 1
    return blocks[:length]


@dataclass(frozen=True)
class SecretDeriver:
    """Derives the secrets of one stack (`scope`) from its seed, each as a secret `Output`."""

    seed: pulumi.Output[str]
    scope: str
    lengths: Mapping[str, int] = field(default_factory=dict)
    """Length in bytes of each named purpose (a purpose not listed must pass `length`)."""
    generations: Mapping[str, int] = field(default_factory=dict)
    """Current generation of each purpose (1 when unlisted); from `homelab:rotation`."""

    def raw(self, purpose: str, *, length: int | None = None, generation: int | None = None) -> pulumi.Output[bytes]:
        size = length if length is not None else self.lengths[purpose]
        current = generation if generation is not None else self.generations.get(purpose, 1)
        label = f"homelab/{self.scope}/{purpose}/v{current}"
        return pulumi.Output.secret(self.seed.apply(lambda value: derive_secret(value, label, size)))

    def token(self, purpose: str, *, length: int | None = None, generation: int | None = None) -> pulumi.Output[str]:
        """URL- and shell-safe text (hex) for passwords and tokens."""
        return self.raw(purpose, length=length, generation=generation).apply(lambda data: data.hex())

    def b64(self, purpose: str, *, length: int | None = None, generation: int | None = None) -> pulumi.Output[str]:
        """Standard base64, for keys a consumer decodes (Authentik's secret key, tunnel secrets)."""
        raw = self.raw(purpose, length=length, generation=generation)
        return raw.apply(lambda data: base64.b64encode(data).decode())
