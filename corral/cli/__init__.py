"""The `corral` command: one module per command group."""
