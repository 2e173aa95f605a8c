"""`Tunnel`: one remotely managed Cloudflare Tunnel, its ingress, DNS records and Access.

One tunnel per connector location: its connector (cloudflared) dials out to Cloudflare, so no
router or security list opens a port. Each route becomes an ingress rule and a proxied CNAME to
`<tunnel-id>.cfargotunnel.com`; each admin route also gets a Cloudflare Access application whose
policy admits members of the identity provider's admin group (Authentik, `groups` claim) who
signed in with a second factor, and cloudflared itself checks the Access token on that rule. A
machine route (a collector's write path) gets an Access application whose only policy is
`non_identity` with the named service tokens: no login page, no person, no other token. The
ingress list always ends with the `http_status:404` catch-all.

A route whose gate is created later (an Authentik application, after the management VM is up)
has `deferred_dns`: its record is published by `GatedRecords` once the gate exists, never before.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NotRequired, TypedDict

import pulumi
import pulumi_cloudflare as cloudflare

from components.cloudflare.routes import CATCH_ALL_SERVICE, TunnelRoute


@dataclass(frozen=True)
class AccessSettings:
    """Who passes Cloudflare Access in front of admin routes."""

    team_name: str
    """Zero Trust team name; cloudflared validates Access tokens issued for it."""
    identity_provider_id: pulumi.Input[str]
    """The Access identity provider (Authentik over OIDC) admins sign in with."""
    admin_group: str
    """Value of the identity provider's `groups` claim that admits a user."""
    session_duration: str = "12h"


class TunnelArgs(TypedDict):
    account_id: pulumi.Input[str]
    zone_id: pulumi.Input[str]
    tunnel_name: str
    """Name shown in the Zero Trust dashboard (`homelab-cloud`)."""
    tunnel_secret: pulumi.Input[str]
    """Base64 of at least 32 random bytes; keep it secret (it is the tunnel's identity)."""
    routes: Sequence[TunnelRoute]
    """Ingress rules in order; the catch-all is appended here."""
    access: AccessSettings
    dns_comment: NotRequired[str]
    machine_token_ids: NotRequired[Sequence[pulumi.Input[str]]]
    """Access service tokens (`ServiceToken.token_id`) admitted on the machine routes; required
    when a route has `machine`."""


class Tunnel(pulumi.ComponentResource):
    """A remotely managed tunnel with catalog-derived ingress, DNS and Access."""

    tunnel_id: pulumi.Output[str]
    cname_target: pulumi.Output[str]
    token: pulumi.Output[str]
    """The connector's token (secret): `cloudflared tunnel run --token-file <file>`."""
    hostnames: pulumi.Output[list[str]]

    def __init__(self, name: str, args: TunnelArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("homelab:cloudflare:Tunnel", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        routes = list(args["routes"])
        keys = [r.key for r in routes]
        if len(set(keys)) != len(keys):
            raise ValueError(f"Tunnel {name!r}: route keys must be unique, got {keys}")
        account_id = args["account_id"]
        access = args["access"]

        # The tunnel's identity: deleting it breaks every connector and DNS record at once.
        tunnel = cloudflare.ZeroTrustTunnelCloudflared(
            f"{name}-tunnel",
            account_id=account_id,
            name=args["tunnel_name"],
            config_src="cloudflare",
            tunnel_secret=pulumi.Output.secret(args["tunnel_secret"]),
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(protect=True)),
        )
        self.tunnel_id = tunnel.id
        self.cname_target = tunnel.id.apply(lambda tunnel_id: f"{tunnel_id}.cfargotunnel.com")

        admin_routes = [r for r in routes if r.admin]
        machine_routes = [r for r in routes if r.machine]
        both = [r.key for r in admin_routes if r.machine]
        if both:
            raise ValueError(f"Tunnel {name!r}: route {both[0]!r} is for admins or for machines, not both")
        tokens = list(args.get("machine_token_ids", ()))
        if machine_routes and not tokens:
            raise ValueError(f"Tunnel {name!r}: machine routes need machine_token_ids (an Access service token)")
        applications: dict[str, cloudflare.ZeroTrustAccessApplication] = {}
        if admin_routes:
            admins = cloudflare.ZeroTrustAccessPolicy(
                f"{name}-admins",
                account_id=account_id,
                name=f"{args['tunnel_name']}: administrators with MFA",
                decision="allow",
                # The group, as the identity provider asserts it: membership is managed in Authentik.
                includes=[
                    {
                        "oidc": {
                            "claim_name": "groups",
                            "claim_value": access.admin_group,
                            "identity_provider_id": access.identity_provider_id,
                        }
                    }
                ],
                # The identity provider must report a second factor (amr contains "mfa").
                requires=[{"auth_method": {"auth_method": "mfa"}}],
                session_duration=access.session_duration,
                opts=child,
            )
            for route in admin_routes:
                applications[route.key] = cloudflare.ZeroTrustAccessApplication(
                    f"{name}-access-{route.key}",
                    account_id=account_id,
                    name=f"{route.key} ({args['tunnel_name']})",
                    type="self_hosted",
                    domain=route.access_domain,
                    destinations=[{"type": "public", "uri": route.access_domain}],
                    policies=[{"id": admins.id, "precedence": 1}],
                    allowed_idps=[access.identity_provider_id],
                    auto_redirect_to_identity=True,
                    session_duration=access.session_duration,
                    app_launcher_visible=False,
                    http_only_cookie_attribute=True,
                    same_site_cookie_attribute="lax",
                    opts=child,
                )

        if machine_routes:
            # `non_identity`: Access checks the service token headers and never shows a login page.
            machines = cloudflare.ZeroTrustAccessPolicy(
                f"{name}-machines",
                account_id=account_id,
                name=f"{args['tunnel_name']}: collectors with a service token",
                decision="non_identity",
                includes=[{"service_token": {"token_id": token}} for token in tokens],
                opts=child,
            )
            for route in machine_routes:
                applications[route.key] = cloudflare.ZeroTrustAccessApplication(
                    f"{name}-access-{route.key}",
                    account_id=account_id,
                    name=f"{route.key} ({args['tunnel_name']})",
                    type="self_hosted",
                    domain=route.access_domain,
                    destinations=[{"type": "public", "uri": route.access_domain}],
                    policies=[{"id": machines.id, "precedence": 1}],
                    session_duration=access.session_duration,
                    app_launcher_visible=False,
                    # Without a valid token a collector gets 401, not a redirect to a login page.
                    service_auth401_redirect=True,
                    opts=child,
                )

        ingresses: list[cloudflare.ZeroTrustTunnelCloudflaredConfigConfigIngressArgsDict] = []
        for route in routes:
            origin: cloudflare.ZeroTrustTunnelCloudflaredConfigConfigIngressOriginRequestArgsDict = {}
            if route.http_host_header:
                origin["http_host_header"] = route.http_host_header
            if route.key in applications:
                # Access on the rule itself: a top-level originRequest.access is ignored by cloudflared.
                origin["access"] = {
                    "aud_tags": [applications[route.key].aud],
                    "team_name": access.team_name,
                    "required": True,
                }
            rule: cloudflare.ZeroTrustTunnelCloudflaredConfigConfigIngressArgsDict = {
                "hostname": route.hostname,
                "service": route.service,
            }
            if route.path_regex:
                rule["path"] = route.path_regex
            if origin:
                rule["origin_request"] = origin
            ingresses.append(rule)
        ingresses.append({"service": CATCH_ALL_SERVICE})

        cloudflare.ZeroTrustTunnelCloudflaredConfig(
            f"{name}-config",
            account_id=account_id,
            tunnel_id=tunnel.id,
            config={"ingresses": ingresses},
            opts=child,
        )

        # One record per hostname, named after the route that owns the hostname's root.
        owners: dict[str, str] = {}
        deferred = {r.hostname for r in routes if r.deferred_dns}
        for route in sorted(routes, key=lambda r: (r.path is not None, r.key)):
            owners.setdefault(route.hostname, route.key)
        for hostname, key in sorted(owners.items(), key=lambda item: item[1]):
            if hostname in deferred:
                continue  # published by GatedRecords once its gate exists
            cloudflare.DnsRecord(
                f"{name}-dns-{key}",
                zone_id=args["zone_id"],
                name=hostname,
                type="CNAME",
                content=self.cname_target,
                proxied=True,
                ttl=1,
                comment=args.get("dns_comment", f"tunnel {args['tunnel_name']}; managed by Pulumi"),
                # An admin hostname resolves only once its Access application guards it.
                opts=pulumi.ResourceOptions.merge(
                    child,
                    pulumi.ResourceOptions(
                        depends_on=[
                            applications[r.key] for r in routes if r.hostname == hostname and r.key in applications
                        ]
                    ),
                ),
            )
        self.hostnames = pulumi.Output.from_input(sorted(owners))

        token = cloudflare.get_zero_trust_tunnel_cloudflared_token_output(
            account_id=account_id,
            tunnel_id=tunnel.id,
            opts=pulumi.InvokeOutputOptions(parent=self),
        )
        self.token = pulumi.Output.secret(token.token)

        self.register_outputs(
            {
                "tunnel_id": self.tunnel_id,
                "cname_target": self.cname_target,
                "token": self.token,
                "hostnames": self.hostnames,
            }
        )


def zone_id(domain: str, provider: pulumi.ProviderResource) -> pulumi.Output[str]:
    """The id of the Cloudflare zone `domain` (the zone must already exist in the account)."""
    zone = cloudflare.get_zone_output(
        filter={"name": domain, "match": "all"}, opts=pulumi.InvokeOutputOptions(provider=provider)
    )
    return zone.zone_id


class GatedRecordsArgs(TypedDict):
    zone_id: pulumi.Input[str]
    cname_target: pulumi.Input[str]
    """The tunnel's `<tunnel-id>.cfargotunnel.com`."""
    gates: Mapping[str, tuple[str, Sequence[pulumi.Resource]]]
    """Route key -> (hostname, the resources that gate it)."""
    comment: str


class GatedRecords(pulumi.ComponentResource):
    """Tunnel hostnames published only after their gate exists (DNS records depend on it)."""

    def __init__(self, name: str, args: GatedRecordsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("homelab:cloudflare:GatedRecords", name, None, opts)
        for key, (hostname, gate) in sorted(args["gates"].items()):
            if not gate:
                raise ValueError(f"GatedRecords {name!r}: hostname {hostname!r} ({key}) has no gate")
            cloudflare.DnsRecord(
                f"{name}-dns-{key}",
                zone_id=args["zone_id"],
                name=hostname,
                type="CNAME",
                content=args["cname_target"],
                proxied=True,
                ttl=1,
                comment=args["comment"],
                opts=pulumi.ResourceOptions(parent=self, depends_on=list(gate)),
            )
        self.register_outputs({"hostnames": sorted(h for h, _ in args["gates"].values())})


class AccessIdentityProviderArgs(TypedDict):
    account_id: pulumi.Input[str]
    issuer: str
    """The OIDC client's issuer, `https://<authentik>/application/o/<slug>/`."""
    client_id: str
    client_secret: pulumi.Input[str]


class AccessIdentityProvider(pulumi.ComponentResource):
    """Authentik as a generic OIDC identity provider of Cloudflare Access (groups claim, PKCE).

    The client secret is derived by the caller, so this can exist before Authentik does; Access
    logins work once Authentik holds the same client (`AuthentikIdentity`).
    """

    id: pulumi.Output[str]

    def __init__(self, name: str, args: AccessIdentityProviderArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("homelab:cloudflare:AccessIdentityProvider", name, None, opts)
        issuer = args["issuer"]
        base = issuer.split("/application/o/", 1)[0]
        idp = cloudflare.ZeroTrustAccessIdentityProvider(
            f"{name}-oidc",
            account_id=args["account_id"],
            name="Authentik",
            type="oidc",
            config={
                "client_id": args["client_id"],
                "client_secret": pulumi.Output.secret(args["client_secret"]),
                "auth_url": f"{base}/application/o/authorize/",
                "token_url": f"{base}/application/o/token/",
                "certs_url": f"{issuer}jwks/",
                "scopes": ["openid", "email", "profile"],
                "claims": ["groups"],
                "pkce_enabled": True,
            },
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.id = idp.id
        self.register_outputs({"id": self.id})


class ServiceTokenArgs(TypedDict):
    account_id: pulumi.Input[str]
    token_name: str
    """Name shown in the Zero Trust dashboard (`homelab-telemetry`)."""
    generation: NotRequired[int]
    """`client_secret_version`: raising it rotates the secret (the old one stops at once, as
    `previous_client_secret_expires_at` is left unset)."""


class ServiceToken(pulumi.ComponentResource):
    """A Cloudflare Access service token: the credential a collector presents to a machine route.

    It never expires on its own (`duration: forever`): an expired token would silently stop every
    collector. Rotation is explicit (`generation`), and the secret stays a Pulumi secret end to end.
    """

    token_id: pulumi.Output[str]
    client_id: pulumi.Output[str]
    client_secret: pulumi.Output[str]

    def __init__(self, name: str, args: ServiceTokenArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("homelab:cloudflare:ServiceToken", name, None, opts)
        token = cloudflare.ZeroTrustAccessServiceToken(
            f"{name}-token",
            account_id=args["account_id"],
            name=args["token_name"],
            duration="forever",
            client_secret_version=args.get("generation", 1),
            opts=pulumi.ResourceOptions(parent=self, additional_secret_outputs=["clientSecret"]),
        )
        self.token_id = token.id
        self.client_id = token.client_id
        self.client_secret = pulumi.Output.secret(token.client_secret)
        self.register_outputs({"token_id": self.token_id, "client_id": self.client_id})
