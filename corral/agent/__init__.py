"""The node daemon: registers its node, keeps its lease, runs the tasks assigned to it."""
