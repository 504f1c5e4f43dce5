"""The discovery DB: a revisioned key-value store with compare-and-swap and watch.

Callers use the `Store` interface (`corral/store/base.py`) and never know
which backend holds the data; `open_store` picks one from a URL.
"""

from corral.store.base import KeyValue, Op, Store, WatchEvent, WatchExpired, WatchStalled
from corral.store.open import open_store

__all__ = ["KeyValue", "Op", "Store", "WatchEvent", "WatchExpired", "WatchStalled", "open_store"]
