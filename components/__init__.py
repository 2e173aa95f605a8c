"""Typed ComponentResources, one package per domain. Components never read stack config."""
