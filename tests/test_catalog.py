"""The service catalog: seeded from the PRD, validated once, one clear error per mistake."""

import pytest

from stacks.catalog import SEED, ServiceOverrideConfig, build_catalog, upstream_problem
from stacks.config.base import ConfigError

DOMAIN = "example.net"


def test_seed_has_every_prd_service_with_its_tier() -> None:
    catalog = build_catalog(DOMAIN)
    tiers = {s.name: s.tier for s in catalog.services}
    for name in ("nextcloud", "immich", "vaultwarden", "baikal", "n8n"):
        assert tiers[name] == "sso"
    for name in ("navidrome", "komga", "romm", "audiobookshelf", "mealie", "invidious", "glance"):
        assert tiers[name] == "native"
    for name in ("authentik-admin", "omni", "argocd", "grafana", "prometheus", "alertmanager", "ntfy"):
        assert tiers[name] == "admin"
        assert catalog.by_name(name).groups == ("admin",)


def test_locations_follow_the_prd() -> None:
    catalog = build_catalog(DOMAIN)
    assert {s.name for s in catalog.at("prod")} >= {"komga", "romm", "audiobookshelf", "grafana", "ntfy", "argocd"}
    assert {s.name for s in catalog.at("cloud")} >= {"authentik", "omni", "nextcloud", "vaultwarden", "comet"}


def test_hostnames_are_qualified_and_unique() -> None:
    catalog = build_catalog(DOMAIN)
    assert catalog.by_name("grafana").hostname == "grafana.example.net"
    keys = [(s.hostname, s.path) for s in catalog.services]
    assert len(keys) == len(set(keys))
    assert all(s.hostname.endswith(".example.net") for s in catalog.services)


def test_path_entry_is_ordered_before_its_hostname() -> None:
    ordered = [s.name for s in build_catalog(DOMAIN).ordered("cloud")]
    assert ordered.index("authentik-admin") == ordered.index("authentik") - 1


def test_a_longer_path_is_ordered_before_a_shorter_one_it_lies_under() -> None:
    # cloudflared takes the first matching rule: `^/if(/.*)?$` would swallow `/if/admin`.
    extra = {
        "authentik-flows": ServiceOverrideConfig(
            location="cloud", tier="public", hostname="auth", path="/if", upstream="http://authentik-server:9000"
        )
    }
    ordered = [s.name for s in build_catalog(DOMAIN, extra).ordered("cloud")]
    assert ordered.index("authentik-admin") < ordered.index("authentik-flows") < ordered.index("authentik")


def test_a_trailing_slash_names_the_same_path() -> None:
    catalog = build_catalog(DOMAIN, {"authentik-admin": ServiceOverrideConfig(path="/if/admin/")})
    assert catalog.by_name("authentik-admin").path == "/if/admin"


def test_adding_a_service_is_one_entry() -> None:
    extra = {
        "jellyseerr": ServiceOverrideConfig(
            location="prod", tier="native", hostname="requests", upstream="http://jellyseerr.media.svc:5055"
        )
    }
    before = build_catalog(DOMAIN)
    after = build_catalog(DOMAIN, extra)
    assert len(after.services) == len(before.services) + 1
    assert after.by_name("jellyseerr").hostname == "requests.example.net"


def test_override_and_disable_a_seeded_service() -> None:
    catalog = build_catalog(
        DOMAIN, {"immich": ServiceOverrideConfig(location="prod"), "invidious": ServiceOverrideConfig(enabled=False)}
    )
    assert catalog.by_name("immich").location == "prod"
    with pytest.raises(KeyError):
        catalog.by_name("invidious")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"music2": ServiceOverrideConfig(location="cloud", tier="native", hostname="music", upstream="http://x:1")},
            "homelab:catalog.services.music2.hostname: 'music.example.net' is already used by service 'navidrome'",
        ),
        (
            {"grafana": ServiceOverrideConfig(hostname="grafana.other.org")},
            "homelab:catalog.services.grafana.hostname: 'grafana.other.org' is not under the catalog domain",
        ),
        (
            {"grafana": ServiceOverrideConfig(tier="public")},
            "homelab:catalog.services.grafana.tier: admin services are never public (group 'admin'); use tier 'admin'",
        ),
        (
            {"grafana": ServiceOverrideConfig(upstream="http://93.184.216.34:80")},
            "homelab:catalog.services.grafana.upstream: address 93.184.216.34 is not internal",
        ),
        (
            {"newapp": ServiceOverrideConfig(tier="native", hostname="new")},
            "homelab:catalog.services.newapp: a new service needs location, upstream",
        ),
        (
            {
                "auth-api": ServiceOverrideConfig(
                    location="cloud",
                    tier="public",
                    hostname="auth",
                    path="/if/admin/",
                    upstream="http://authentik-server:9000",
                )
            },
            "homelab:catalog.services.auth-api.hostname: 'auth.example.net/if/admin' is already used by service",
        ),
        (
            {
                "auth-root": ServiceOverrideConfig(
                    location="cloud", tier="public", hostname="auth", path="/", upstream="http://authentik-server:9000"
                )
            },
            "homelab:catalog.services.auth-root.path: '/' is the whole hostname: leave path unset instead",
        ),
        (
            {"omni": ServiceOverrideConfig(groups=("family",))},
            "homelab:catalog.services.omni.groups: an admin service must be limited to group 'admin'",
        ),
    ],
)
def test_mistakes_give_one_clear_error(overrides: dict[str, ServiceOverrideConfig], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        build_catalog(DOMAIN, overrides)
    text = str(caught.value)
    assert text.startswith(message)
    assert "\n" not in text


@pytest.mark.parametrize(
    ("url", "internal"),
    [
        ("http://grafana.monitoring.svc.cluster.local:80", True),
        ("http://authentik-server:9000", True),
        ("https://10.20.1.20:443", True),
        ("http://192.168.68.51:8006", True),
        ("http://grafana.example.com:80", False),
        ("http://8.8.8.8:53", False),
        ("http://127.0.0.1:80", False),
        ("http://grafana.monitoring.svc.cluster.local", False),
        ("tcp://db.svc:5432", False),
    ],
)
def test_upstreams_must_be_internal(url: str, internal: bool) -> None:
    assert (upstream_problem(url) is None) is internal


def test_seed_entries_are_all_valid_services() -> None:
    assert len({s.name for s in SEED}) == len(SEED)
