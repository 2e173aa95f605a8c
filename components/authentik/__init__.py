"""Authentik configuration (pulumi_authentik 2025.8.1): the identity layer of the `cloud` stack."""
