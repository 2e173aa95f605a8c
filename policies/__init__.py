"""The homelab CrossGuard policy pack. `policies/__main__.py` serves it to the Pulumi CLI."""
