"""Stacks are pure composition: read config, build components, export outputs.

Each stack lives in its own module and is imported only when selected, so a stack pays the import
cost of exactly the provider SDKs it uses (`pulumi_cloudflare` alone takes seconds).
"""

import importlib

from stacks.config.base import ConfigError

STACK_MODULES: dict[str, str] = {
    "dev": "stacks.dev",
    "prod": "stacks.prod",
    "cloud": "stacks.cloud",
}


def build(stack_name: str) -> None:
    """Build the stack called `stack_name` (the name `pulumi stack select` chose)."""
    module_name = STACK_MODULES.get(stack_name)
    if module_name is None:
        known = ", ".join(STACK_MODULES)
        raise ConfigError(f"unknown stack {stack_name!r}: this project defines {known}")
    importlib.import_module(module_name).build()
