"""The backup plan: data classes as catalog data, retention parsing, copies and the 3-2-1 verdict."""

import pytest

from stacks.backups import (
    ClassPolicyConfig,
    Offsite,
    holders,
    namespaces_by_class,
    protection_rows,
    protections,
    retention_days,
)
from stacks.catalog import ServiceOverrideConfig, build_catalog
from stacks.config import ConfigError

CATALOG = build_catalog("example.net")


@pytest.mark.parametrize(("value", "days"), [("1d", 1), ("7d", 7), ("4w", 28), ("6m", 180), ("1y", 365)])
def test_retention_parses(value: str, days: int) -> None:
    assert retention_days(value) == days


@pytest.mark.parametrize("value", ["", "7", "0d", "7 d", "-1d", "1h", "10000d"])
def test_retention_that_does_not_parse_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match="is not a retention"):
        retention_days(value)


def test_offsite_class_needs_an_offsite_retention() -> None:
    with pytest.raises(ValueError, match="offsite_keep"):
        ClassPolicyConfig.model_validate({"local_keep": "7d", "offsite": True})


def test_platform_components_and_services_declare_their_class() -> None:
    found = {h.name: h for h in holders(CATALOG)}
    assert found["authentik"].data_class == "critical" and found["authentik"].runs == "management-vm"
    assert found["omni"].data_class == "critical"
    assert found["immich"].namespace == "immich" and found["immich"].runs == "cluster"
    for name in ("argocd", "grafana", "prometheus"):
        assert found[name].data_class == "important" and found[name].location == "prod"
    assert found["grafana"].namespace == "monitoring"
    assert {"pulumi-state", "prod-etcd", "cloud-etcd"} <= set(found)
    # Stateless services hold nothing to back up.
    assert "glance" not in found and "authentik-admin" not in found


def test_adding_a_classified_service_is_one_catalog_entry() -> None:
    catalog = build_catalog(
        "example.net",
        {
            "paperless": ServiceOverrideConfig(
                location="cloud",
                tier="sso",
                hostname="docs",
                upstream="http://paperless.paperless.svc.cluster.local:8000",
                groups=("family",),
                data_class="critical",
                sso="oidc",
                redirect_uris=("/accounts/oidc/authentik/login/callback/",),
            )
        },
    )
    paperless = next(p for p in protections(catalog) if p.holder.name == "paperless")
    assert paperless.holder.namespace == "paperless"
    # The weekly volume backups cover the nodes' boot volumes too: a cluster app's copies are that
    # backup's and Velero's.
    assert [c.layer for c in paperless.copies] == ["primary", "volume-backup", "velero", "home-mirror"]
    assert namespaces_by_class(holders(catalog), "cloud")["critical"] == (
        "baikal",
        "immich",
        "nextcloud",
        "paperless",
        "vaultwarden",
    )


def test_an_unknown_data_class_names_the_key() -> None:
    with pytest.raises(ConfigError, match=r"^homelab:catalog\.services\.immich\.data_class: "):
        build_catalog("example.net", {"immich": ServiceOverrideConfig.model_construct(data_class="precious")})


def test_three_two_one_verdicts() -> None:
    by_name = {p.holder.name: p for p in protections(CATALOG)}
    # Home critical data: PROD SSD + vzdump on the mirror + offsite in OCI.
    assert by_name["prod-etcd"].three_two_one
    # Cloud critical data: OCI volume + its backup + a nightly dump, mirrored home.
    assert by_name["authentik"].three_two_one
    assert [c.site for c in by_name["authentik"].copies] == ["oci", "oci", "oci", "home"]
    # Media is local only by design; important is not offsite by default.
    assert by_name["komga"].verdict.startswith("local only by class")
    assert by_name["grafana"].verdict == "not 3-2-1 (2 copies, no offsite copy)"
    # Snapshots never count as a copy.
    assert all(c.layer != "zfs-snapshot" for c in by_name["komga"].counted)


def test_without_the_home_mirror_cloud_data_has_no_offsite_copy() -> None:
    by_name = {p.holder.name: p for p in protections(CATALOG, Offsite(home_mirror=False))}
    assert by_name["nextcloud"].verdict == "not 3-2-1 (no offsite copy)"
    with_ovh = {p.holder.name: p for p in protections(CATALOG, Offsite(ovh_bucket=True))}
    # Velero has one storage location (OVH when configured): a CLOUD volume has its primary, the
    # node's weekly boot-volume backup (a second medium) and Velero's copy at OVH (another site).
    assert with_ovh["nextcloud"].verdict == "3-2-1"
    # The management VM's dump goes to every offsite target: OCI (same site) and OVH (the one that leaves).
    assert [f"{c.layer}@{c.site}" for c in with_ovh["omni"].copies] == [
        "primary@oci",
        "volume-backup@oci",
        "nightly-dump@oci",
        "nightly-dump@ovh",
    ]
    assert [f"{c.layer}@{c.site}" for c in with_ovh["nextcloud"].copies][-1] == "velero@ovh"


def test_the_state_leaves_oci_only_through_the_dump_at_ovh_and_stays_on_a_second_medium() -> None:
    oci_only = {p.holder.name: p for p in protections(CATALOG, Offsite(home_mirror=False))}
    counted = [f"{c.layer}@{c.site}:{c.medium}" for c in oci_only["pulumi-state"].counted]
    assert counted == [
        "primary@oci:object-storage",
        "state-local@oci:oci-block-volume",
        "state-dump@oci:object-storage",
    ]
    assert not oci_only["pulumi-state"].offsite
    assert oci_only["pulumi-state"].verdict == "not 3-2-1 (no offsite copy)"
    with_ovh = {p.holder.name: p for p in protections(CATALOG, Offsite(ovh_bucket=True, home_mirror=False))}
    assert [f"{c.layer}@{c.site}" for c in with_ovh["pulumi-state"].offsite] == ["state-dump@ovh"]
    assert with_ovh["pulumi-state"].verdict == "3-2-1"


def test_layers_not_built_are_never_claimed() -> None:
    built = frozenset({"primary", "zfs-snapshot", "vzdump"})
    etcd = next(p for p in protections(CATALOG, location="prod", built=built) if p.holder.name == "prod-etcd")
    assert [c.layer for c in etcd.copies] == ["primary", "zfs-snapshot", "vzdump"]
    assert not etcd.three_two_one


def test_class_policy_override_moves_a_class_offsite() -> None:
    classes = {"important": ClassPolicyConfig(local_keep="7d", offsite=True, offsite_keep="14d")}
    rows = {r["holder"]: r for r in protection_rows(protections(CATALOG, classes=classes, location="prod"))}
    assert rows["grafana"]["three_two_one"] is True
    assert rows["grafana"]["copies"][-1] == "velero@oci"
