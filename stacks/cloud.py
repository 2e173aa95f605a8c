"""The `cloud` stack (composition only: config -> components -> outputs)."""

import pulumi

from stacks.config import ConfigModel, load_config


class CloudConfig(ConfigModel):
    """Typed config of the `cloud` stack."""

    environment: str = "cloud"


def build() -> None:
    config = load_config(CloudConfig)
    pulumi.export("environment", config.environment)
