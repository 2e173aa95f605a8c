"""The `prod` stack (composition only: config -> components -> outputs)."""

import pulumi

from stacks.config import ConfigModel, load_config


class ProdConfig(ConfigModel):
    """Typed config of the `prod` stack."""

    environment: str = "prod"


def build() -> None:
    config = load_config(ProdConfig)
    pulumi.export("environment", config.environment)
