"""The etcd v3 store backend (for several managers sharing one control plane); see `store.py`."""

from corral.store.etcd.store import EtcdSettings, EtcdStore

__all__ = ["EtcdSettings", "EtcdStore"]
