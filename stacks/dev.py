"""The `dev` stack (composition only: config -> components -> outputs)."""

import pulumi

from stacks.config import ConfigModel, load_config


class DevConfig(ConfigModel):
    """Typed config of the `dev` stack."""

    environment: str = "dev"


def build() -> None:
    config = load_config(DevConfig)
    pulumi.export("environment", config.environment)
