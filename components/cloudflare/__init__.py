"""Cloudflare: the tunnels users reach the homelab through, their DNS records and Access.

Import the submodules directly (`components.cloudflare.tunnel`, `components.cloudflare.connector`):
this package re-exports nothing, so a stack that only runs a connector never loads the Cloudflare
SDK (the heaviest SDK of the project).
"""
