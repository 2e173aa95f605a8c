"""Pulumi entry point: build the stack that `pulumi stack select` chose."""

import pulumi

from stacks import build

build(pulumi.get_stack())
