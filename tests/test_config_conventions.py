"""The configuration conventions of docs/architecture.md hold for every stack-config model."""

import importlib
import pkgutil

import stacks
from stacks.config.base import ConfigModel, SecretSpec

# Models that validate like config but are not a stack-config section.
NOT_SECTIONS = {
    "Service": "a catalog entry: the seed catalog merged with `homelab:catalog.services` overrides",
    "Exemption": "an entry of policies/exemptions.yaml, read by the policy-config generator",
}


def _all_subclasses(cls: type) -> set[type]:
    found: set[type] = set()
    for sub in cls.__subclasses__():
        found |= {sub, *_all_subclasses(sub)}
    return found


def _import_every_stack_module() -> None:
    for module in pkgutil.walk_packages(stacks.__path__, prefix="stacks."):
        importlib.import_module(module.name)


def test_every_config_model_is_named_after_its_section() -> None:
    _import_every_stack_module()
    models = _all_subclasses(ConfigModel)
    assert len(models) > 30, "the stacks' config models were not found"
    misnamed = sorted(m.__qualname__ for m in models if not m.__name__.endswith("Config"))
    assert misnamed == sorted(NOT_SECTIONS)


def test_every_config_model_rejects_unknown_keys_and_is_frozen() -> None:
    _import_every_stack_module()
    for model in _all_subclasses(ConfigModel):
        assert model.model_config.get("extra") == "forbid", model.__name__
        assert model.model_config.get("frozen") is True, model.__name__


def test_no_stack_module_holds_a_secret_value() -> None:
    """A SecretSpec declares a secret; the offline stand-ins belong to the engine."""
    assert set(SecretSpec.__dataclass_fields__) == {"key", "description", "required", "required_with"}
