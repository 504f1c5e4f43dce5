"""The per-stack networks of the tasks on this host: the engine's bridges (`engine.py`), a snapshot of
who is on which (`view.py`) and the firewall rules that keep stacks apart (`isolation.py`)."""
