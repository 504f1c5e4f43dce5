"""Settings for the whole test suite."""

import os

# The manager's cache checks that every object it takes from its own writes equals what the store's value reads
# back as, field by field and type by type (corral/manager/own_writes.py); manager processes the tests start inherit it.
os.environ["CORRAL_VERIFY_WRITES"] = "1"
