"""`SecretDeriver`: one seed in, independent secret values out, and the labels never drift."""

import base64
from typing import cast

import pulumi
import pytest

from components.derived import SecretDeriver, derive_secret
from homelab.engine import Recording

SEED = "seed-for-known-answers"

# Known answers of the label format every existing estate's secrets were derived with. If one of
# these changes, every Authentik key, database password and tunnel secret of a running estate
# would rotate on the next `pulumi up`.
KNOWN = {
    ("homelab/cloud/postgres_password/v1", 24): "4b0ccf481e3bde3a162ef19be3385da38de0cc56041d321e",
    ("homelab/cloud/oidc/grafana/v2", 32): "d2e0b30779c7f1f21a3b5410196e8e0d5ebf4bba68c416bdd10970ad2bcd6df5",
    ("homelab/cloud/authentik_secret_key/v1", 48): (
        "7bcef01081ed290cceb0a9b9a98a668d7f4619521d4154b17b6e2728f5f6170c03f49e106b40fc0c23c3ad5270db2d5b"
    ),
}


@pytest.mark.parametrize(("label", "length"), list(KNOWN))
def test_known_answers_pin_the_label_format(label: str, length: int) -> None:
    assert derive_secret(SEED, label, length).hex() == KNOWN[label, length]


def test_lengths_beyond_one_block_and_prefixes() -> None:
    long = derive_secret(SEED, "x", 80)
    assert len(long) == 80
    assert derive_secret(SEED, "x", 16) == long[:16]  # counter blocks: a shorter value is a prefix
    with pytest.raises(ValueError, match="length must be positive"):
        derive_secret(SEED, "x", 0)


def _derive(record, rotation: dict[str, int]) -> Recording:
    def program() -> None:
        seed = pulumi.Config("homelab").require_secret("secretSeed")
        derived = SecretDeriver(seed, "cloud", lengths={"postgres_password": 24, "tunnel": 32}, generations=rotation)
        pulumi.export("postgres", derived.token("postgres_password"))
        pulumi.export("tunnel", derived.b64("tunnel"))
        pulumi.export("grafana", derived.token("oidc/grafana", length=32, generation=2))

    return record(program, secrets={"homelab:secretSeed": SEED})


def test_values_are_secret_outputs_and_match_the_label_format(record) -> None:
    outputs = _derive(record, {}).outputs
    assert all(o.secret for o in outputs.values())
    assert outputs["postgres"].value == KNOWN["homelab/cloud/postgres_password/v1", 24]
    assert outputs["grafana"].value == KNOWN["homelab/cloud/oidc/grafana/v2", 32]
    assert base64.b64decode(outputs["tunnel"].value) == derive_secret(SEED, "homelab/cloud/tunnel/v1", 32)


def test_bumping_a_generation_rotates_that_purpose_alone(record) -> None:
    before = _derive(record, {}).outputs
    after = _derive(record, {"postgres_password": 2}).outputs
    assert after["postgres"].value != before["postgres"].value
    assert after["postgres"].value == derive_secret(SEED, "homelab/cloud/postgres_password/v2", 24).hex()
    assert after["tunnel"].value == before["tunnel"].value


def test_a_purpose_without_a_length_is_an_error() -> None:
    # The length is looked up before the seed is touched, so no program is needed.
    deriver = SecretDeriver(cast("pulumi.Output[str]", None), "cloud")
    with pytest.raises(KeyError):
        deriver.raw("unlisted")
