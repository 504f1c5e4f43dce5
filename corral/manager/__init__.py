"""The control plane: API, cluster management, replication, scheduling, health."""
