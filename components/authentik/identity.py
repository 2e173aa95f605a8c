"""`AuthentikIdentity`: groups, sign-up, MFA, applications and service accounts in Authentik.

Threat model. Authentik is the gate in front of every Tier-1 app and the identity provider behind
Cloudflare Access for every admin app, so its configuration decides who reaches family data:

- An application with no policy binding is open to every authenticated user, including a sign-up
  nobody approved. Every application here is bound to its groups and nothing else; `pending` is
  bound to nothing.
- Self-service sign-up creates an *inactive* user in `pending` and ends in a deny stage that says
  an administrator must approve it; admins are notified (event rule: Authentik's notification
  centre, e-mail when Authentik has a relay, a push to ntfy). An inactive user cannot log in, and
  approval (activate + move to `family`) is a human decision (docs/runbooks/identity.md).
- Without an e-mail relay nothing pretends to send mail: the sign-in page offers no self-service
  password reset (the recovery flow stays for links an admin creates) and no e-mail transport exists.
- The ntfy token is a write-only token for one topic; it reaches Authentik only inside a secret
  header mapping (never in the webhook URL, never in plain state).
  Invitations are the pre-approved path: their users land active in `family`.
- The authentication flow is owned here (the blueprint-managed default flow is re-applied on every
  Authentik upgrade): identification + password, then an authenticator-validation stage with
  `not_configured_action="configure"` (TOTP or WebAuthn), required for `admin` and, by default,
  for everyone. A brand for the Authentik hostname makes it the flow users meet.
- OIDC clients are confidential, sign with RS256 (the instance's self-signed key pair) and match
  redirect URIs strictly; their secrets are derived from the stack seed by the caller and only
  leave as secret outputs.
- Service accounts get API tokens that do not expire (unattended jobs) and an RBAC role with exactly
  the listed permissions, never superuser.

First preview of a fresh estate: every flow, stage, group, provider and application is created
here, so a preview needs no Authentik. The two objects Authentik creates itself (its self-signed key
pair and the managed OAuth2 scope mappings) are looked up with invokes that depend on `ready`, the
resources after which the server answers (docs/decisions/authentik-first-preview.md).
"""

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypedDict

import pulumi
import pulumi_authentik as ak
import yaml

from components.authentik.specs import NtfyPush, OidcClient, ProxyApp, SamlApp, ServiceAccount

ADMIN, FAMILY, PENDING = "admin", "family", "pending"
GROUP_NAMES = (ADMIN, FAMILY, PENDING)
SELF_SIGNED_KEY_PAIR = "authentik Self-signed Certificate"
SCOPES = tuple(f"goauthentik.io/providers/oauth2/scope-{s}" for s in ("openid", "email", "profile"))
"""`profile` carries the `groups` claim (group names) the consumers map to roles."""
EMBEDDED_OUTPOST = "goauthentik.io/outposts/embedded"
PASSWORD_BACKENDS = ("authentik.core.auth.InbuiltBackend", "authentik.core.auth.TokenBackend")
MFA_DEVICE_CLASSES = ("totp", "webauthn")


class AuthentikIdentityArgs(TypedDict):
    authentik_host: str
    """Public hostname of Authentik (`auth.example.net`): brand domain, issuer and outpost host."""
    mfa_for_all: bool
    """Require a second factor from every user (True) or from `admin` only (False)."""
    password_min_length: int
    email: bool
    """Authentik has an e-mail relay: offer self-service password recovery, e-mail admins."""
    ntfy: NtfyPush | None
    """Push sign-up notifications to this ntfy topic too (None: no push)."""
    oidc_clients: Sequence[OidcClient]
    proxy_apps: Sequence[ProxyApp]
    saml_apps: Sequence[SamlApp]
    service_accounts: Sequence[ServiceAccount]
    ready: Sequence[pulumi.Resource]
    """Resources after which the Authentik server answers: its data-source lookups wait for them."""


@dataclass(frozen=True)
class OidcExport:
    """What a consumer of an OIDC client needs (exported by the stack; the secret stays secret)."""

    issuer: str
    client_id: str
    client_secret: pulumi.Output[str]

    def as_output(self) -> dict[str, object]:
        return {"issuer": self.issuer, "client_id": self.client_id, "client_secret": self.client_secret}


class AuthentikIdentity(pulumi.ComponentResource):
    """The whole Authentik configuration of the homelab; the Authentik provider comes through `opts`."""

    group_ids: dict[str, pulumi.Output[str]]
    oidc: dict[str, OidcExport]
    service_account_tokens: dict[str, pulumi.Output[str]]
    gates: dict[str, list[pulumi.Resource]]
    """Per application slug: the resources that must exist before its hostname is published."""
    authentication_flow: pulumi.Output[str]

    def __init__(self, name: str, args: AuthentikIdentityArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("homelab:authentik:Identity", name, None, opts)
        self._name = name
        self._child = pulumi.ResourceOptions(parent=self)
        host = args["authentik_host"]
        self._base_url = f"https://{host}"
        self.gates = {}

        self._groups = {g: ak.Group(f"{name}-group-{g}", name=g, is_superuser=g == ADMIN, opts=self._child)
                        for g in GROUP_NAMES}  # fmt: skip
        self.group_ids = {g: group.id for g, group in self._groups.items()}

        policy = ak.PolicyPassword(
            f"{name}-password-policy",
            name="homelab-password-policy",
            length_min=args["password_min_length"],
            check_static_rules=True,
            check_have_i_been_pwned=True,
            hibp_allowed_count=0,
            check_zxcvbn=True,
            zxcvbn_score_threshold=3,
            error_message="Choose a longer password that has not appeared in a known breach.",
            opts=self._child,
        )
        recovery = self._recovery_flow(policy)
        enrollment = self._enrollment_flow(policy)
        self._invitation_flow(policy)
        authentication = self._authentication_flow(args["mfa_for_all"], enrollment, recovery if args["email"] else None)
        logout = self._logout_flow()
        self.authentication_flow = authentication.uuid
        ak.Brand(
            f"{name}-brand",
            domain=host,
            default=False,
            branding_title="Homelab",
            flow_authentication=authentication.uuid,
            flow_invalidation=logout.uuid,
            flow_recovery=recovery.uuid,
            opts=self._child,
        )
        self._notify_admins_of_sign_ups(email=args["email"], ntfy=args["ntfy"])

        # Providers' own flows: implicit consent (the user already chose the app) and a plain
        # provider logout, owned here like every other flow.
        self._authorization = ak.Flow(
            f"{name}-flow-authorization",
            slug="homelab-provider-authorization",
            name="homelab-provider-authorization",
            title="Redirecting to the application",
            designation="authorization",
            authentication="require_authenticated",
            opts=self._child,
        )
        self._invalidation = ak.Flow(
            f"{name}-flow-provider-invalidation",
            slug="homelab-provider-invalidation",
            name="homelab-provider-invalidation",
            title="Signed out of the application",
            designation="invalidation",
            opts=self._child,
        )

        lookups = pulumi.InvokeOutputOptions(parent=self, depends_on=list(args["ready"]))
        # The key pair's certificate only (never its private key) is read into the state.
        self._signing_key = ak.get_certificate_key_pair_output(
            name=SELF_SIGNED_KEY_PAIR, fetch_certificate=False, fetch_key=False, opts=lookups
        ).id
        self._scopes = ak.get_property_mapping_provider_scope_output(managed_lists=list(SCOPES), opts=lookups).ids

        self.oidc = {client.slug: self._oidc(client) for client in args["oidc_clients"]}
        proxies = {app.slug: self._proxy(app) for app in args["proxy_apps"]}
        if proxies:
            outpost = self._embedded_outpost(list(proxies.values()))
            for slug in proxies:
                self.gates[slug].append(outpost)
        for app in args["saml_apps"]:
            self._saml(app)
        self.service_account_tokens = {sa.name: self._service_account(sa) for sa in args["service_accounts"]}

        self.register_outputs(
            {
                "group_ids": self.group_ids,
                "authentication_flow": self.authentication_flow,
                "oidc": {slug: export.as_output() for slug, export in self.oidc.items()},
                "service_account_tokens": self.service_account_tokens,
            }
        )

    # --- flows -----------------------------------------------------------------------------------

    def _flow(self, key: str, slug: str, title: str, designation: str, authentication: str) -> ak.Flow:
        return ak.Flow(
            f"{self._name}-flow-{key}",
            slug=slug,
            name=slug,
            title=title,
            designation=designation,
            authentication=authentication,
            opts=self._child,
        )

    def _bind(
        self, flow: ak.Flow, key: str, stages: Sequence[pulumi.Resource], **extra: object
    ) -> list[ak.FlowStageBinding]:
        bindings: list[ak.FlowStageBinding] = []
        for index, stage in enumerate(stages):
            bindings.append(
                ak.FlowStageBinding(
                    f"{self._name}-{key}-binding-{index}",
                    target=flow.uuid,
                    stage=stage.id,  # type: ignore[attr-defined]  # every stage has an id
                    order=(index + 1) * 10,
                    opts=self._child,
                    **extra,  # type: ignore[arg-type]
                )
            )
        return bindings

    def _field(self, key: str, field_key: str, label: str, type_: str, order: int) -> ak.StagePromptField:
        return ak.StagePromptField(
            f"{self._name}-field-{key}",
            name=f"homelab-{key}",
            field_key=field_key,
            label=label,
            type=type_,
            required=True,
            order=order,
            placeholder=label,
            opts=self._child,
        )

    def _account_prompt(self, key: str, policy: ak.PolicyPassword) -> ak.StagePrompt:
        fields = [
            self._field(f"{key}-username", "username", "Username", "username", 0),
            self._field(f"{key}-name", "name", "Name", "text", 10),
            self._field(f"{key}-email", "email", "E-mail", "email", 20),
            self._field(f"{key}-password", "password", "Password", "password", 30),
            self._field(f"{key}-password-repeat", "password_repeat", "Password (again)", "password", 40),
        ]
        return ak.StagePrompt(
            f"{self._name}-{key}-prompt",
            name=f"homelab-{key}-prompt",
            fields=[f.id for f in fields],
            validation_policies=[policy.id],
            opts=self._child,
        )

    def _enrollment_flow(self, policy: ak.PolicyPassword) -> ak.Flow:
        """Self-service sign-up: an inactive user in `pending`, and a message instead of a login."""
        flow = self._flow(
            "enrollment", "homelab-enrollment", "Create an account", "enrollment", "require_unauthenticated"
        )
        write = ak.StageUserWrite(
            f"{self._name}-enrollment-write",
            name="homelab-enrollment-write",
            user_creation_mode="always_create",
            create_users_as_inactive=True,
            create_users_group=self._groups[PENDING].id,
            user_type="internal",
            user_path_template="users/pending",
            opts=self._child,
        )
        done = ak.StageDeny(
            f"{self._name}-enrollment-pending",
            name="homelab-enrollment-pending",
            deny_message="Your account was created. An administrator must approve it before you can sign in.",
            opts=self._child,
        )
        self._bind(flow, "enrollment", [self._account_prompt("enrollment", policy), write, done])
        return flow

    def _invitation_flow(self, policy: ak.PolicyPassword) -> ak.Flow:
        """Invitation-only sign-up: the administrator approved by inviting, users land in `family`."""
        flow = self._flow(
            "invitation", "homelab-invitation", "Join the homelab", "enrollment", "require_unauthenticated"
        )
        invitation = ak.StageInvitation(
            f"{self._name}-invitation-check",
            name="homelab-invitation-check",
            continue_flow_without_invitation=False,
            opts=self._child,
        )
        write = ak.StageUserWrite(
            f"{self._name}-invitation-write",
            name="homelab-invitation-write",
            user_creation_mode="always_create",
            create_users_as_inactive=False,
            create_users_group=self._groups[FAMILY].id,
            user_type="internal",
            user_path_template="users/family",
            opts=self._child,
        )
        login = ak.StageUserLogin(f"{self._name}-invitation-login", name="homelab-invitation-login", opts=self._child)
        self._bind(flow, "invitation", [invitation, self._account_prompt("invitation", policy), write, login])
        return flow

    def _recovery_flow(self, policy: ak.PolicyPassword) -> ak.Flow:
        """Password reset through a link e-mailed to the account's address (Authentik's global SMTP)."""
        flow = self._flow("recovery", "homelab-recovery", "Reset your password", "recovery", "require_unauthenticated")
        identify = ak.StageIdentification(
            f"{self._name}-recovery-identification",
            name="homelab-recovery-identification",
            user_fields=["username", "email"],
            pretend_user_exists=True,
            opts=self._child,
        )
        email = ak.StageEmail(
            f"{self._name}-recovery-email",
            name="homelab-recovery-email",
            use_global_settings=True,
            subject="Reset your homelab password",
            template="email/password_reset.html",
            token_expiry="minutes=30",
            activate_user_on_success=False,
            opts=self._child,
        )
        fields = [
            self._field("recovery-password", "password", "New password", "password", 0),
            self._field("recovery-password-repeat", "password_repeat", "New password (again)", "password", 10),
        ]
        prompt = ak.StagePrompt(
            f"{self._name}-recovery-prompt",
            name="homelab-recovery-prompt",
            fields=[f.id for f in fields],
            validation_policies=[policy.id],
            opts=self._child,
        )
        write = ak.StageUserWrite(
            f"{self._name}-recovery-write",
            name="homelab-recovery-write",
            user_creation_mode="never_create",
            opts=self._child,
        )
        login = ak.StageUserLogin(f"{self._name}-recovery-login", name="homelab-recovery-login", opts=self._child)
        self._bind(flow, "recovery", [identify, email, prompt, write, login])
        return flow

    def _authentication_flow(self, mfa_for_all: bool, enrollment: ak.Flow, recovery: ak.Flow | None) -> ak.Flow:
        flow = self._flow(
            "authentication", "homelab-authentication", "Sign in", "authentication", "require_unauthenticated"
        )
        password = ak.StagePassword(
            f"{self._name}-password",
            name="homelab-password",
            backends=list(PASSWORD_BACKENDS),
            failed_attempts_before_cancel=5,
            opts=self._child,
        )
        identify = ak.StageIdentification(
            f"{self._name}-identification",
            name="homelab-identification",
            user_fields=["username", "email"],
            password_stage=password.id,
            enrollment_flow=enrollment.uuid,
            # The "Forgot password?" link, only when the recovery e-mail can be sent.
            recovery_flow=recovery.uuid if recovery is not None else None,
            case_insensitive_matching=True,
            opts=self._child,
        )
        totp = ak.StageAuthenticatorTotp(
            f"{self._name}-totp-setup", name="homelab-totp-setup", digits="6", friendly_name="Authenticator app",
            opts=self._child,
        )  # fmt: skip
        webauthn = ak.StageAuthenticatorWebauthn(
            f"{self._name}-webauthn-setup", name="homelab-webauthn-setup", user_verification="preferred",
            friendly_name="Security key or passkey", opts=self._child,
        )  # fmt: skip
        mfa = ak.StageAuthenticatorValidate(
            f"{self._name}-mfa",
            name="homelab-mfa-validate",
            device_classes=list(MFA_DEVICE_CLASSES),
            # A user without a device must enrol one now; `skip` would make MFA optional.
            not_configured_action="configure",
            configuration_stages=[totp.id, webauthn.id],
            opts=self._child,
        )
        login = ak.StageUserLogin(
            f"{self._name}-login", name="homelab-login", session_duration="hours=12", opts=self._child
        )
        [_, mfa_binding, _] = self._bind(
            flow,
            "authentication",
            [identify, mfa, login],
            # The user is known only after identification: decide the MFA binding then, not at plan.
            evaluate_on_plan=False,
            re_evaluate_policies=True,
        )
        if not mfa_for_all:
            # Only members of `admin` meet the MFA stage; everyone else signs in with a password.
            ak.PolicyBinding(
                f"{self._name}-mfa-admins",
                target=mfa_binding.id,
                group=self._groups[ADMIN].id,
                order=0,
                opts=self._child,
            )
        return flow

    def _logout_flow(self) -> ak.Flow:
        flow = self._flow("logout", "homelab-logout", "Signed out", "invalidation", "none")
        logout = ak.StageUserLogout(f"{self._name}-logout", name="homelab-logout", opts=self._child)
        self._bind(flow, "logout", [logout])
        return flow

    def _notify_admins_of_sign_ups(self, *, email: bool, ntfy: NtfyPush | None) -> None:
        """Every new user (a sign-up waiting for approval, or an invitation used) notifies `admin`:
        in Authentik's notification centre, by e-mail (Authentik's global SMTP settings) when a
        relay is configured, and as a push to ntfy when `ntfy` is given."""
        matcher = ak.PolicyEventMatcher(
            f"{self._name}-new-user",
            name="homelab-new-user",
            action="model_created",
            model="authentik_core.user",
            opts=self._child,
        )
        # One notification per admin for the personal channels, one push for the shared topic.
        transports = [
            ak.EventTransport(
                f"{self._name}-notify-local", name="homelab-local", mode="local", send_once=False, opts=self._child
            )
        ]
        if email:
            transports.append(
                ak.EventTransport(
                    f"{self._name}-notify-email",
                    name="homelab-email",
                    mode="email",
                    email_subject_prefix="[homelab] ",
                    send_once=False,
                    opts=self._child,
                )
            )
        if ntfy is not None:
            transports.append(self._ntfy_transport(ntfy))
        rule = ak.EventRule(
            f"{self._name}-notify-sign-up",
            name="homelab-notify-sign-up",
            transports=[t.id for t in transports],
            destination_group=self._groups[ADMIN].id,
            severity="notice",
            opts=self._child,
        )
        ak.PolicyBinding(f"{self._name}-notify-sign-up-binding", target=rule.id, policy=matcher.id, order=0,
                         opts=self._child)  # fmt: skip

    def _ntfy_transport(self, push: NtfyPush) -> ak.EventTransport:
        """A webhook to ntfy's JSON publishing endpoint: the body names the topic, a header mapping
        carries the bearer token (secret in the state, never in the URL)."""
        # Every notification mapping is kept secret (policy SEC-10): a mapping is where a webhook's
        # credentials live, whichever of the two holds them.
        secret_expression = pulumi.ResourceOptions.merge(
            self._child, pulumi.ResourceOptions(additional_secret_outputs=["expression"])
        )
        body = ak.PropertyMappingNotification(
            f"{self._name}-ntfy-body",
            name="homelab-ntfy-body",
            expression=ntfy_body_expression(push.topic, push.click_url),
            opts=secret_expression,
        )
        headers = ak.PropertyMappingNotification(
            f"{self._name}-ntfy-headers",
            name="homelab-ntfy-headers",
            expression=pulumi.Output.secret(pulumi.Output.from_input(push.token).apply(ntfy_headers_expression)),
            opts=secret_expression,
        )
        return ak.EventTransport(
            f"{self._name}-notify-ntfy",
            name="homelab-ntfy",
            mode="webhook",
            webhook_url=push.url,
            webhook_mapping_body=body.id,
            webhook_mapping_headers=headers.id,
            send_once=True,
            opts=self._child,
        )

    # --- applications ----------------------------------------------------------------------------

    def _application(
        self, slug: str, name: str, provider: pulumi.Output[str], groups: Sequence[str], launch_url: str | None
    ) -> None:
        unknown = [g for g in groups if g not in self._groups]
        if not groups or unknown:
            raise ValueError(f"application {slug!r}: groups must be a non-empty subset of {GROUP_NAMES}, got {groups}")
        app = ak.Application(
            f"{self._name}-app-{slug}",
            slug=slug,
            name=name,
            # The provider's id is its numeric primary key.
            protocol_provider=provider.apply(float),
            meta_launch_url=launch_url,
            policy_engine_mode="any",
            opts=self._child,
        )
        bindings = [
            ak.PolicyBinding(
                f"{self._name}-app-{slug}-{group}",
                target=app.uuid,
                group=self._groups[group].id,
                order=index * 10,
                opts=self._child,
            )
            for index, group in enumerate(groups)
        ]
        self.gates[slug] = [app, *bindings]

    def _oidc(self, client: OidcClient) -> OidcExport:
        secret = pulumi.Output.secret(client.client_secret)
        provider = ak.ProviderOauth2(
            f"{self._name}-oidc-{client.slug}",
            name=client.slug,
            client_id=client.slug,
            client_secret=secret,
            client_type="confidential",
            authorization_flow=self._authorization.uuid,
            invalidation_flow=self._invalidation.uuid,
            allowed_redirect_uris=[{"matching_mode": "strict", "url": uri} for uri in client.redirect_uris],
            signing_key=self._signing_key,
            property_mappings=self._scopes,
            sub_mode="hashed_user_id",
            issuer_mode="per_provider",
            opts=pulumi.ResourceOptions.merge(
                self._child, pulumi.ResourceOptions(additional_secret_outputs=["clientSecret"])
            ),
        )
        self._application(client.slug, client.name, provider.id, client.groups, client.launch_url)
        return OidcExport(
            issuer=f"{self._base_url}/application/o/{client.slug}/", client_id=client.slug, client_secret=secret
        )

    def _proxy(self, app: ProxyApp) -> pulumi.Output[str]:
        provider = ak.ProviderProxy(
            f"{self._name}-proxy-{app.slug}",
            name=app.slug,
            mode="proxy",
            external_host=app.external_host,
            internal_host=app.internal_host,
            internal_host_ssl_validation=True,
            skip_path_regex=app.skip_path_regex,
            authorization_flow=self._authorization.uuid,
            invalidation_flow=self._invalidation.uuid,
            opts=self._child,
        )
        self._application(app.slug, app.name, provider.id, app.groups, app.external_host)
        return provider.id

    def _embedded_outpost(self, provider_ids: list[pulumi.Output[str]]) -> ak.Blueprint:
        """Attach the proxy providers to Authentik's embedded outpost (in `authentik-server`).

        The SDK can neither look the embedded outpost up nor attach a provider to it (both arrive
        with provider v2025.10), so a blueprint owned here updates the managed outpost in place.
        """
        content = pulumi.Output.all(*provider_ids).apply(
            lambda ids: yaml.safe_dump(
                {
                    "version": 1,
                    "metadata": {"name": "homelab-embedded-outpost"},
                    "entries": [
                        {
                            "model": "authentik_outposts.outpost",
                            "identifiers": {"managed": EMBEDDED_OUTPOST},
                            "state": "present",
                            "attrs": {
                                "providers": sorted(int(i) for i in ids),
                                "config": {"authentik_host": f"{self._base_url}/"},
                            },
                        }
                    ],
                },
                sort_keys=False,
            )
        )
        return ak.Blueprint(
            f"{self._name}-embedded-outpost",
            name="homelab-embedded-outpost",
            content=content,
            enabled=True,
            opts=self._child,
        )

    def _saml(self, app: SamlApp) -> None:
        email = ak.PropertyMappingProviderSaml(
            f"{self._name}-saml-{app.slug}-email",
            name=f"homelab-{app.slug}-email",
            saml_name=app.email_attribute,
            friendly_name=app.email_attribute,
            expression="return request.user.email",
            opts=self._child,
        )
        provider = ak.ProviderSaml(
            f"{self._name}-saml-{app.slug}",
            name=app.slug,
            acs_url=app.acs_url,
            audience=app.audience,
            issuer=f"{self._base_url}/application/saml/{app.slug}/",
            sp_binding="post",
            sign_assertion=True,
            sign_response=True,
            signing_kp=self._signing_key,
            property_mappings=[email.id],
            name_id_mapping=email.id,
            authorization_flow=self._authorization.uuid,
            invalidation_flow=self._invalidation.uuid,
            opts=self._child,
        )
        self._application(app.slug, app.name, provider.id, app.groups, app.launch_url)

    # --- service accounts ------------------------------------------------------------------------

    def _service_account(self, account: ServiceAccount) -> pulumi.Output[str]:
        key = f"{self._name}-sa-{account.name}"
        role = ak.RbacRole(f"{key}-role", name=f"homelab-{account.name}", opts=self._child)
        for permission in account.permissions:
            ak.RbacPermissionRole(
                f"{key}-{permission.replace('.', '-').replace('_', '-')}",
                role=role.id,
                permission=permission,
                opts=self._child,
            )
        group = ak.Group(f"{key}-group", name=f"svc-{account.name}", roles=[role.id], opts=self._child)
        user = ak.User(
            key,
            username=account.name,
            name=account.purpose,
            type="service_account",
            path="goauthentik.io/service-accounts",
            groups=[group.id],
            attributes=json.dumps({"managed-by": "pulumi"}),
            opts=self._child,
        )
        token = ak.Token(
            f"{key}-token",
            identifier=f"homelab-{account.name}",
            user=user.id.apply(float),
            intent="api",
            expiring=False,
            retrieve_key=True,
            description=account.purpose,
            opts=pulumi.ResourceOptions.merge(self._child, pulumi.ResourceOptions(additional_secret_outputs=["key"])),
        )
        return pulumi.Output.secret(token.key)


def ntfy_body_expression(topic: str, click_url: str) -> str:
    """The webhook body mapping: one ntfy JSON message (`topic`, `title`, `message`, `click`).

    Authentik evaluates it with the notification in `request.context`; the event's context names
    the created user.
    """
    fixed = {
        "topic": topic,
        "title": "New Authentik account",
        "priority": 4,
        "tags": ["bust_in_silhouette"],
        "click": click_url,
    }
    return "\n".join(
        [
            'notification = request.context["notification"]',
            'model = (notification.event.context.get("model") or {}) if notification.event else {}',
            'who = model.get("name") or "A new user"',
            f"message = {fixed!r}",
            'message["message"] = f"{who} signed up. Approve it (activate, pending -> family) or delete it."',
            "return message",
            "",
        ]
    )


def ntfy_headers_expression(token: str) -> str:
    """The webhook header mapping: the ntfy bearer token (the expression is a secret)."""
    return f"return {{'Authorization': {'Bearer ' + token!r}}}\n"


def oidc_exports(identity: AuthentikIdentity, slugs: Sequence[str]) -> Mapping[str, dict[str, object]]:
    """The exported shape of the named OIDC clients (`oidc_<slug>` stack outputs)."""
    return {slug: identity.oidc[slug].as_output() for slug in slugs}


def authentik_provider(name: str, url: str, token: pulumi.Input[str], ready: pulumi.Resource) -> ak.Provider:
    """The explicit Authentik provider: the bootstrap token (an API token of `akadmin`) against the
    public URL, configured only once `ready` says the server answers."""
    return ak.Provider(
        name,
        url=url,
        token=pulumi.Output.secret(token),
        insecure=False,
        opts=pulumi.ResourceOptions(depends_on=[ready]),
    )
