"""Kubernetes platform pieces installed by Pulumi (storage classes; later ExternalSecrets, monitoring).

Import the submodules directly; this package re-exports nothing.
"""
