"""The `homelab` command: offline preview, policy gate and reports for the homelab Pulumi stacks."""
