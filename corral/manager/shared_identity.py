"""Several managers, one cluster: they must hold the same cluster CA (what agents and CLIs pin).

The first manager to start records its CA's fingerprint in the store (`cluster/ca`); every later one
compares its own and refuses to start on a mismatch, naming the files to copy from a running manager's
data dir (ca.pem, ca-key.pem, join-token, kek), rather than issue certificates nobody trusts.
"""

from corral.manager import keys
from corral.model.errors import Conflict, CorralError
from corral.pki import ClusterCA, ca_fingerprint
from corral.store import Store

CA_KEY = keys.CLUSTER.rsplit("/", 1)[0] + "/ca"


class ForeignCA(CorralError):
    """This manager's data dir holds another cluster CA than the one the store's cluster uses."""


async def check_cluster_ca(store: Store, ca: ClusterCA) -> None:
    mine = ca_fingerprint(ca.certificate)
    found = await store.get(CA_KEY)
    if found is None:
        try:
            await store.put(CA_KEY, {"fingerprint": mine}, expect=0)
            return
        except Conflict:  # another manager recorded its own first
            found = await store.get(CA_KEY)
            assert found is not None
    if found.value.get("fingerprint") != mine:
        raise ForeignCA(
            f"this manager's cluster CA (sha256 {mine[:16]}...) is not the cluster's (sha256"
            f" {str(found.value.get('fingerprint'))[:16]}...): a manager joining a control plane needs ca.pem, ca-key.pem,"
            " join-token and kek copied from a running manager's data dir into its own before its first start"
        )
