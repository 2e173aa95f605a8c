"""OCI Always Free: network, instances, the management VM and the Talos substrate.

Import the submodules directly (`components.oci.network`, ...); this package re-exports nothing.
"""
