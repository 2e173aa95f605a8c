"""The Proxmox VE host as code: provider, host preparation, ZFS pool, gaming VM and Talos VMs.

Import the submodules directly; this package re-exports nothing so each stack loads only what it uses.
"""
