"""tracescan: the edge agent for drug traceability scanning."""

__version__ = "0.1.0"
