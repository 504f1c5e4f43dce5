"""corral: a container orchestrator small enough to read in an afternoon."""

__version__ = "0.1.0"
