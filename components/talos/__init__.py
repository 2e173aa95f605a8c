"""Talos Linux clusters: one `TalosCluster` for every substrate, and Cilium installed at bootstrap.

Import the submodules directly (`components.talos.cluster`, `components.talos.cilium`): this package
deliberately re-exports nothing, so importing the substrate seam never loads a provider SDK.
"""
