"""One budget model: the stacks' summaries, the config defaults and the budget policies agree."""

import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from homelab import budget
from homelab.budget import ALWAYS_FREE, Layout, usage
from policies.rules import budget as rules
from stacks.quota import AlwaysFreeQuotaConfig


def test_config_and_policy_defaults_are_the_models_limits() -> None:
    assert AlwaysFreeQuotaConfig().limits() == ALWAYS_FREE
    assert {k: v for k, v in rules.always_free_compute.defaults.items() if k != "exemptions"} == {
        "a1Ocpus": ALWAYS_FREE.a1_ocpus,
        "a1MemoryGb": ALWAYS_FREE.a1_memory_gb,
        "microInstances": ALWAYS_FREE.e2_micro_instances,
    }
    assert {k: v for k, v in rules.always_free_storage.defaults.items() if k != "exemptions"} == {
        "blockStorageGb": ALWAYS_FREE.block_storage_gb,
        "volumeBackups": ALWAYS_FREE.volume_backups,
        "objectStorageGb": ALWAYS_FREE.object_storage_gb,
    }
    assert set(rules.always_free_shapes.defaults["allowedShapes"]) == set(budget.FREE_SHAPES)


def test_the_policy_counts_the_recorded_stack_as_the_exported_summary_does(previewed: Any) -> None:
    recording = previewed("cloud").recording
    exported = recording.outputs["always_free_usage"].value
    instances = recording.by_type("oci:Core/instance:Instance")
    volumes = {v.name: float(v.inputs["sizeInGbs"]) for v in recording.by_type("oci:Core/volume:Volume")}

    class _Recorded:  # the shape of a policy's PolicyResource the rules read
        def __init__(self, name: str, props: dict[str, Any]) -> None:
            self.name, self.props = name, props

    machines = tuple(rules._machine(_Recorded(i.name, dict(i.inputs))) for i in instances)  # type: ignore[arg-type]
    seen = usage(Layout(machines=machines, block_volumes_gb=volumes))
    assert seen.a1_ocpus == exported["a1_ocpus"]["used"]
    assert seen.a1_memory_gb == exported["a1_memory_gb"]["used"]
    assert seen.block_storage_gb == exported["block_storage_gb"]["used"]
    # Buckets (backups included) at the sizes their tags declare: the ledger's object storage row.
    buckets = {
        b.name: float(b.inputs["freeformTags"][budget.EXPECTED_GB_TAG])
        for b in recording.by_type("oci:ObjectStorage/bucket:Bucket")
    }
    assert (
        usage(Layout(machines=(), object_storage_gb=buckets)).object_storage_gb == exported["object_storage_gb"]["used"]
    )


def test_the_model_imports_neither_pulumi_nor_pydantic() -> None:
    """The policy pack and the stacks both import it; it must stay plain Python."""
    code = (
        "import sys, homelab.budget; print(sorted(m for m in sys.modules if m.split('.')[0] in {'pulumi', 'pydantic'}))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert result.stdout.strip() == "[]"


def test_host_mode_totals_share_one_arithmetic() -> None:
    total = budget.mode_total_mb([4096, 12288], 2048, 12288)
    assert (total.here_mb, total.other_stacks_mb, total.reserved_mb, total.total_mb) == (16384, 2048, 12288, 30720)


def test_the_always_free_catalogue_names_real_oci_resource_types() -> None:
    """Each entry is a resource type token of the pinned pulumi_oci SDK (a typo would let nothing in)."""
    spec = importlib.util.find_spec("pulumi_oci")
    assert spec is not None and spec.origin is not None
    package = Path(spec.origin).parent
    for token in budget.ALWAYS_FREE_CATALOGUE:
        module, path = token.removeprefix("oci:").split(":")[0].split("/")
        source = package / module.lower() / (re.sub(r"(?<!^)(?=[A-Z])", "_", path).lower() + ".py")
        assert source.is_file() and f"'{token}'" in source.read_text(), token


def test_every_oci_type_the_cloud_stack_registers_is_in_the_catalogue(previewed: Any) -> None:
    registered = {r.type for r in previewed("cloud").recording.resources if r.type.startswith("oci:")}
    assert registered and registered <= set(budget.ALWAYS_FREE_CATALOGUE), registered - set(
        budget.ALWAYS_FREE_CATALOGUE
    )
