"""The node's DNS responder: service names for the containers of this host (`server.py`), answered from
the manager's records and the engine's networks (`records.py`, pure)."""
