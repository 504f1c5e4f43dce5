"""A node: one server whose agent runs the containers assigned to it."""

from enum import Enum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from corral.model.resources import Resources


class NodeState(str, Enum):
    ready = "ready"
    down = "down"


class NodeAvailability(str, Enum):
    active = "active"
    drain = "drain"
    pause = "pause"  # keeps its tasks, takes no new ones


# What a user or an agent may set as a node label: a key a constraint can name
# (`node.labels.KEY == VALUE`), a value without control characters.
_LABEL_KEY = r"^[A-Za-z0-9_.\-/]+$"
_LABEL_VALUE = r"^[^\x00-\x1f\x7f]*$"
NodeLabels = Annotated[
    dict[Annotated[str, Field(pattern=_LABEL_KEY)], Annotated[str, Field(pattern=_LABEL_VALUE)]],
    # (pydantic would say `patternProperties`, which lets any other key through)
    WithJsonSchema({"type": "object", "propertyNames": {"pattern": _LABEL_KEY}, "additionalProperties": {"type": "string", "pattern": _LABEL_VALUE}}),
]


class Node(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$")
    address: str
    labels: dict[str, str] = Field(default_factory=dict)
    resources: Resources
    state: NodeState = NodeState.ready
    availability: NodeAvailability = NodeAvailability.active
    engine: str = "docker"
    last_heartbeat: float
    registered_at: float
    message: str = ""
    credential: str = ""  # SHA-256 digest of the node's credential (corral/manager/credentials.py); never shown
    # Serial numbers (hex) of the node certificates its agent may connect with: the newest and, while it
    # renews, the one before. Any other certificate in the node's name is refused (docs/security.md).
    certificates: list[str] = Field(default_factory=list)
    # The port of the agent's node listener on `address` (logs and exec streams, mutual TLS); None: it serves none.
    agent_port: int | None = Field(default=None, ge=1, le=65535)
