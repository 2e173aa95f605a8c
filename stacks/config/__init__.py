"""Typed configuration of the three stacks (see `base` for how it is loaded and validated)."""

from stacks.config.base import ConfigError, ConfigModel, SecretSpec, load_config

__all__ = ["ConfigError", "ConfigModel", "SecretSpec", "load_config"]
