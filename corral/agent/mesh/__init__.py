"""The routing mesh: a node's proxy from published ports to the service's endpoints.

    mesh = Mesh()
    errors = await mesh.apply({("127.0.0.2", 8080, "tcp"): [("127.0.0.3", 32768)]})
    await mesh.close()

See docs/architecture.md, "Routing mesh".
"""

from corral.agent.mesh.balancing import STRATEGIES, Pool, Strategy
from corral.agent.mesh.counters import MeshCounters
from corral.agent.mesh.mesh import Mesh
from corral.agent.mesh.settings import MeshSettings
from corral.agent.mesh.table import Backend, Listener, Table, parse_table

__all__ = ["STRATEGIES", "Backend", "Listener", "Mesh", "MeshCounters", "MeshSettings", "Pool", "Strategy", "Table", "parse_table"]
