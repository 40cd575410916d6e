"""netlab: the Kubernetes architecture in miniature on one Linux host."""

__version__ = "0.1.0"
